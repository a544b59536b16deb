"""Wake-ups between the processes that share a store: "a revocation or a key was committed".

A write that every replica must see at once announces itself (``Dialect.announce``), and
the announcement reaches listeners when, and only if, the write commits: every process
sharing a PostgreSQL store (``LISTEN/NOTIFY``, in ``_postgres``), or the listeners of this
process on SQLite (in ``_sqlite``; other processes see SQLite writes at their next poll).

A notification carries no data a reader relies on: it only says "read the store now".
The reader then reads by sequence (gap-free), so a lost notification (a dropped
connection, a crash between commit and delivery) delays a change until the next
reconnection or poll, and never loses it. For the same reason a listener also wakes its
reader every time it (re)connects: whatever was announced meanwhile is read then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

REVOCATION: Final = "revocation"
"""Announced change: a revocation was committed (with its sequence)."""
KEY: Final = "key"
"""Announced change: a signing key was added."""
SETTING: Final = "setting"
"""Announced change: a setting was replaced (the revocation epoch)."""


class ChangeListener(Protocol):
    """Tells one reader, on its event loop, that the shared store may have changed."""

    async def listen(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change()`` on the running loop whenever a change may have been committed.

        It is called once at the start, again after every reconnection, and after each
        announced change (several changes may share one call; a call may be spurious).
        Runs until cancelled; never raises for a lost connection (it reconnects).

        Args:
            on_change: Cheap and non-blocking (e.g. sets an ``asyncio.Event``).
        """
        ...
