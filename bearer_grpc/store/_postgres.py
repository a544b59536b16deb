"""The PostgreSQL dialect: one database shared by every replica.

- **Engine** (``postgresql://...``, driven by psycopg 3): pre-ping on checkout (a
  connection the server dropped, e.g. on restart, is replaced before use), and connect,
  keepalive and TCP timeouts so a lost server fails calls within seconds instead of
  hanging them (:func:`connect_defaults`).
- **Transactions** run READ COMMITTED; the store's named locks are transaction-scoped
  advisory locks (``pg_advisory_xact_lock``), taken where rows alone cannot protect an
  invariant.
- **Announcements**: ``pg_notify`` on :data:`CHANNEL`, inside the writing transaction, so
  the notification is delivered when, and only if, the transaction commits. The payload
  names the change and the schema (``"revocation 42 public"``), never a token or key.
  :class:`PostgresListener` holds one autocommit connection of its own in ``LISTEN``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import os
import random
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Final

from sqlalchemy import Connection, Insert, Table, create_engine, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL

from bearer_grpc.core.backoff import Backoff, backoff_delay
from bearer_grpc.store._errors import StoreError

log = logging.getLogger("bearer_grpc.store")

SCHEMES: Final = frozenset({"postgresql", "postgres", "postgresql+psycopg"})
"""URL schemes of PostgreSQL stores."""
CHANNEL: Final = "bearer_grpc_changes"
"""The notification channel of every bearer-grpc store."""

_PSYCOPG_MISSING = (
    "PostgreSQL support needs the 'postgres' extra: pip install 'bearer-grpc[postgres]'"
)
_CONNECT_TIMEOUT_S = 10
_TCP_USER_TIMEOUT_MS = 15_000
_UNIQUE_VIOLATION = "23505"
# Delivered at commit, and only then. The schema tells stores in one database apart.
_NOTIFY = text("SELECT pg_notify(:channel, CAST(:head AS text) || current_schema())")


class PostgreSQL:
    """The PostgreSQL dialect of one open store (see the module docstring).

    Args:
        url: A ``postgresql://USER:PASSWORD@HOST:PORT/DB`` URL; its query is passed to
            the driver.

    Raises:
        StoreError: psycopg is not installed.
    """

    name: ClassVar[str] = "PostgreSQL"

    def __init__(self, url: URL) -> None:
        try:
            installed = importlib.util.find_spec("psycopg") is not None
        except (ImportError, ValueError):
            installed = False
        if not installed:
            raise StoreError(_PSYCOPG_MISSING)
        self.engine = create_engine(
            url.set(drivername="postgresql+psycopg"),
            pool_pre_ping=True,
            hide_parameters=True,
            connect_args=connect_defaults(url, "bearer-grpc"),
        )

    def write(self) -> AbstractContextManager[Connection]:
        """A READ COMMITTED transaction; its notifications are delivered at commit."""
        return self.engine.begin()

    def read(self) -> AbstractContextManager[Connection]:
        """A READ COMMITTED transaction."""
        return self.engine.begin()

    def lock(self, conn: Connection, *name: str, shared: bool = False) -> None:
        """Take ``pg_advisory_xact_lock`` (or its ``_shared`` form) on :func:`lock_key`."""
        take = func.pg_advisory_xact_lock_shared if shared else func.pg_advisory_xact_lock
        conn.execute(select(take(lock_key(*name))))

    def insert_ignore(self, table: Table, values: Mapping[str, Any], *, key: str) -> Insert:
        """``INSERT ... ON CONFLICT (key) DO NOTHING``."""
        return postgresql.insert(table).values(values).on_conflict_do_nothing(index_elements=[key])

    def announce(self, conn: Connection, kind: str, sequence: int) -> None:
        """``pg_notify`` every process sharing this store's schema, at commit."""
        conn.execute(_NOTIFY, {"channel": CHANNEL, "head": f"{kind} {sequence} "})

    def listener(self) -> PostgresListener:
        """A listener with a ``LISTEN`` connection of its own: woken by every process."""
        _, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
        kwargs.pop("context", None)  # SQLAlchemy's type adapters: not for a raw connection
        return PostgresListener(
            {**kwargs, **connect_defaults(self.engine.url, "bearer-grpc-listener")}
        )

    def is_unique_violation(self, error: BaseException | None) -> bool:
        """Whether the error's SQLSTATE is ``unique_violation``."""
        return getattr(error, "sqlstate", None) == _UNIQUE_VIOLATION

    def unavailable_reason(self, error: BaseException | None) -> str:
        """``"cannot connect"`` for connection failures, else the SQLSTATE.

        Never the server's message: it may quote the values of the statement.
        """
        sqlstate = getattr(error, "sqlstate", None)
        if sqlstate is None or sqlstate.startswith("08"):
            return "cannot connect"
        return f"SQLSTATE {sqlstate}"


def lock_key(*name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a lock name.

    Args:
        *name: Parts of the lock name, e.g. ``("subject", "alice")``.

    Returns:
        The first 8 bytes of the name's SHA-256 digest as a signed integer. A collision only
        makes two unrelated operations wait for each other.
    """
    digest = hashlib.sha256("\0".join(("bearer-grpc", *name)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def connect_defaults(url: URL, application: str) -> dict[str, object]:
    """The libpq connection parameters the URL does not set itself.

    - ``connect_timeout``: an unreachable server fails a call (StoreUnavailable) instead of
      hanging it.
    - TCP keepalives and ``tcp_user_timeout``: a connection whose peer vanished without a
      word (a failover, a dropped network path) is noticed within seconds, not hours.
    - ``application_name`` ``APPLICATION/PID``: operators (and the tests) can tell this
      process's sessions apart in ``pg_stat_activity``.
    """
    defaults: dict[str, object] = {
        "connect_timeout": _CONNECT_TIMEOUT_S,
        "keepalives": 1,
        "keepalives_idle": 15,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": _TCP_USER_TIMEOUT_MS,
        "application_name": f"{application}/{os.getpid()}",
    }
    return {name: value for name, value in defaults.items() if name not in url.query}


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
        """See ``ChangeListener.listen``."""
        import psycopg  # the optional 'postgres' extra: imported only where it is used

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
            await asyncio.sleep(backoff_delay(self._backoff, self._failures, random.random()))

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


def _concerns(payload: str, schema: str) -> bool:
    """Whether a payload (``"KIND SEQUENCE SCHEMA"``) announces a change in ``schema``.

    Stores in other schemas of the same database share the channel; their
    notifications are ignored.
    """
    parts = payload.split(" ", 2)
    return len(parts) == 3 and parts[2] == schema
