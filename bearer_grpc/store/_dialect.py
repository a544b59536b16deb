"""The dialect: what SQLite and PostgreSQL do differently, behind one small interface.

:class:`~bearer_grpc.store.SqlStore` runs the same statements on every database and asks
its dialect only for the few things that differ. There is one implementation per database,
``_sqlite.SQLite`` and ``_postgres.PostgreSQL``, and ``_engine`` picks one from the URL's
scheme, once, when a store opens. Nothing else in the store asks which database it runs on.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol

from sqlalchemy import Connection, Engine, Insert, Table

from bearer_grpc.store._notify import ChangeListener


class Dialect(Protocol):
    """One database's way of doing what the SQL store needs, for one open store."""

    name: ClassVar[str]
    """The database's name in messages: ``"SQLite"`` or ``"PostgreSQL"``."""

    engine: Engine
    """The engine, configured for this database (built when the dialect is)."""

    def write(self) -> AbstractContextManager[Connection]:
        """A write transaction: commits when the block ends, rolls back if it raises.

        Changes announced inside it (:meth:`announce`) reach listeners once it commits.
        """
        ...

    def read(self) -> AbstractContextManager[Connection]:
        """A transaction that only reads (it need not wait for writers)."""
        ...

    def lock(self, conn: Connection, *name: str) -> None:
        """Hold the lock called ``name`` until the current write transaction ends.

        Args:
            conn: A connection inside :meth:`write`.
            *name: Parts of the lock name, e.g. ``("subject", "alice")``.
        """
        ...

    def insert_ignore(self, table: Table, values: Mapping[str, Any], *, key: str) -> Insert:
        """An INSERT that does nothing if a row with the same ``key`` exists or commits first."""
        ...

    def announce(self, conn: Connection, kind: str, sequence: int) -> None:
        """Wake every listener once the current write transaction commits.

        Args:
            conn: A connection inside :meth:`write`.
            kind: What changed (``_notify.REVOCATION`` or ``_notify.KEY``).
            sequence: The revocation's sequence, or 0.
        """
        ...

    def listener(self) -> ChangeListener:
        """A listener woken by the changes this database can tell it about."""
        ...

    def is_unique_violation(self, error: BaseException | None) -> bool:
        """Whether a driver error is a violated PRIMARY KEY or UNIQUE constraint."""
        ...

    def unavailable_reason(self, error: BaseException | None) -> str:
        """Why a driver error makes the store unavailable, briefly and free of secrets.

        For example ``"database is locked"`` or ``"cannot connect"``.
        """
        ...
