"""Medians, percentiles and the interleaving order every comparison uses."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")


def median(values: Iterable[float]) -> float:
    """The median of ``values`` (NaN when empty)."""
    known = [v for v in values if not math.isnan(v)]
    return statistics.median(known) if known else math.nan


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of already sorted values (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Per-round ratios ``a / b`` of two series measured in the same rounds."""
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def round_order(items: Sequence[T], index: int) -> list[T]:
    """The order of round ``index``: A B C, then C B A, ... (ABBA interleaving)."""
    return list(items) if index % 2 == 0 else list(reversed(items))


def spread(values: Sequence[float], fmt: str) -> str:
    """``median (min-max)`` of ``values``, each formatted with ``fmt``."""
    if not values:
        return "n/a"
    return f"{median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"
