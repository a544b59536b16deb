"""Wake-ups between the processes that share a store: "a revocation or a key was committed".

A write that every replica must see at once announces itself after it commits:

- **PostgreSQL**: ``pg_notify`` on :data:`CHANNEL`, inside the writing transaction, so the
  notification is delivered when, and only if, the transaction commits. The payload names
  the change and the schema (``"revocation 42 public"``), never a token or key.
  :class:`PostgresListener` holds one autocommit connection of its own in ``LISTEN``.
- **SQLite**: to the listeners of the same process (:class:`LocalChanges`); other
  processes see SQLite writes at their next poll.

A notification carries no data a reader relies on: it only says "read the store now".
The reader then reads by sequence (gap-free), so a lost notification (a dropped
connection, a crash between commit and delivery) delays a change until the next
reconnection or poll, and never loses it. For the same reason a listener also wakes its
reader every time it (re)connects: whatever was announced meanwhile is read then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from bearer_grpc.core.backoff import Backoff, backoff_delay

log = logging.getLogger("bearer_grpc.store")

CHANNEL: Final = "bearer_grpc_changes"
"""The PostgreSQL notification channel of every bearer-grpc store."""
REVOCATION: Final = "revocation"
"""Payload kind: a revocation was committed (followed by its sequence)."""
KEY: Final = "key"
"""Payload kind: a signing key was added."""


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


class LocalChanges:
    """Changes announced within this process (the SQLite store's :class:`ChangeListener`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[], None]] = []

    def announce(self) -> None:
        """Tell every subscriber that a change committed (called from the writing thread)."""
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber()

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` in the writing thread after each announced change.

        Returns:
            A function that ends the subscription.
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.remove(callback)

        return unsubscribe

    async def listen(self, on_change: Callable[[], None]) -> None:
        """See :meth:`ChangeListener.listen`."""
        loop = asyncio.get_running_loop()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(on_change)

        unsubscribe = self.subscribe(wake)
        try:
            on_change()
            await loop.create_future()  # until cancelled
        finally:
            unsubscribe()


class PostgresListener:
    """A ``LISTEN`` connection of its own that wakes its reader on every announced change.

    It reconnects by itself after a lost connection (within a fraction of a second, then
    backing off while the server stays unreachable) and wakes the reader after each
    reconnection.

    Args:
        connect_kwargs: psycopg connection arguments (host, dbname, user, password,
            options, timeouts...). Never logged.
        backoff: Delays between failed connection attempts.
    """

    def __init__(self, connect_kwargs: Mapping[str, Any], *, backoff: Backoff | None = None):
        self._connect_kwargs = dict(connect_kwargs)
        self._backoff = backoff or Backoff(initial=0.2, maximum=5.0)
        self.connected = False
        """True while the ``LISTEN`` connection is up."""
        self._failures = 0

    def __repr__(self) -> str:
        return f"PostgresListener(connected={self.connected})"

    async def listen(self, on_change: Callable[[], None]) -> None:
        """See :meth:`ChangeListener.listen`."""
        import psycopg

        self._failures = 0
        while True:
            try:
                await self._follow(on_change)
            except (psycopg.Error, OSError) as err:
                if self._failures == 0:
                    log.warning(
                        "store change listener disconnected: reconnecting",
                        extra={"error": type(err).__name__},
                    )
                self._failures += 1
            finally:
                self.connected = False
            # A fraction of a second after a lost session (a failover, a terminated
            # backend), longer while the server stays unreachable; never a tight loop.
            await asyncio.sleep(_delay(self._backoff, self._failures))

    async def _follow(self, on_change: Callable[[], None]) -> None:
        import psycopg
        from psycopg import sql

        async with await psycopg.AsyncConnection.connect(
            **self._connect_kwargs, autocommit=True
        ) as conn:
            cursor = await conn.execute("SELECT current_schema()")
            row = await cursor.fetchone()
            schema = str(row[0]) if row else ""
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
            self.connected = True
            if self._failures:
                log.info("store change listener reconnected")
            self._failures = 0
            on_change()  # read whatever was committed while nobody listened
            async for notify in conn.notifies():
                if _concerns(notify.payload, schema):
                    on_change()
        raise psycopg.OperationalError("notification stream ended")


def _delay(backoff: Backoff, failures: int) -> float:
    return backoff_delay(backoff, failures, random.random())


def payload(kind: str, sequence: int) -> str:
    """The head of a notification payload; the store appends ``current_schema()``."""
    return f"{kind} {sequence} "


def _concerns(text: str, schema: str) -> bool:
    """Whether a payload announces a change of the store in ``schema``.

    Stores in other schemas of the same database share the channel; their
    notifications are ignored.
    """
    parts = text.split(" ", 2)
    return len(parts) == 3 and parts[2] == schema
