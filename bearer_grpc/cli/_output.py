"""Printing results: a human table or line by default, one JSON document with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def emit(as_json: bool, data: Any, text: str) -> None:
    """Print ``data`` as JSON, or ``text`` for people."""
    print(json.dumps(data, indent=2, sort_keys=True) if as_json else text)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned table of ``columns`` (lists joined with commas)."""
    if not rows:
        return "(none)"

    def cell(value: Any) -> str:
        return ",".join(value) if isinstance(value, list | tuple) else str(value)

    cells = [[cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)
