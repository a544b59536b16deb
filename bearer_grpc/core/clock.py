"""Time, injected: the core never reads the clock itself."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A source of wall-clock time in seconds since the Unix epoch."""

    def __call__(self) -> float:
        """Return the current time."""
        ...


system_clock: Clock = time.time
"""The real clock (``time.time``)."""
