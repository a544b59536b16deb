"""Structured logging: one JSON object per line, with an allow-list of fields.

Only the fields named in ``FIELDS`` are ever copied from a record's ``extra``, so a
token, secret or password passed by mistake cannot reach the output.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Final

FIELDS: Final = (
    "method",
    "peer",
    "code",
    "status",
    "interface",
    "reason",
    "duration_ms",
    "subject",
    "client_id",
    "token_id",
    "listen",
    "port",
    "store",
    "issuer",
    "kid",
    "sequence",
    "count",
    "error",
    "actor",
    "action",
    "target",
    "detail",
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message and allowed extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``."""
        line: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
        return json.dumps(line, separators=(",", ":"))


def configure(level: str = "info") -> None:
    """Send bearer_grpc's logs to stderr as JSON lines at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("bearer_grpc")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
