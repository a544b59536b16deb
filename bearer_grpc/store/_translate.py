"""Driver errors turned into the store's exception tree, with messages free of secrets.

SQLAlchemy and driver errors become :class:`StoreUnavailable` (cannot connect, locked,
I/O, deadlock: retry later), :class:`AlreadyExists` (unique violation) or
:class:`StoreError`, chained with ``from err``. Messages are terse and never contain the
URL or statement parameters (the engines are built with ``hide_parameters=True``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from bearer_grpc.store._errors import AlreadyExists, StoreError, StoreUnavailable

# SQLite extended error codes of a violated PRIMARY KEY or UNIQUE constraint.
_SQLITE_UNIQUE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


@contextmanager
def translated_errors(backend: str, conflict: str) -> Iterator[None]:
    """Turn SQLAlchemy/driver errors into the store's exception tree."""
    try:
        yield
    except exc.IntegrityError as err:
        if _is_unique_violation(err.orig):
            raise AlreadyExists(conflict) from err
        raise StoreError(f"{backend} store rejected the change: constraint violated") from err
    except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as err:
        raise StoreUnavailable(f"{backend} store unavailable: {_reason(err)}") from err
    except exc.DBAPIError as err:
        if err.connection_invalidated:
            raise StoreUnavailable(f"{backend} store unavailable: connection lost") from err
        raise StoreError(f"{backend} store error") from err


def _is_unique_violation(orig: BaseException | None) -> bool:
    if isinstance(orig, sqlite3.Error):
        return orig.sqlite_errorname in _SQLITE_UNIQUE
    return getattr(orig, "sqlstate", None) == "23505"


def _reason(err: exc.SQLAlchemyError) -> str:
    """A short, secret-free reason for an unavailable store."""
    if isinstance(err, exc.TimeoutError):
        return "no free connection in the pool"
    orig = getattr(err, "orig", None)
    if isinstance(orig, sqlite3.Error):
        return str(orig)  # SQLite's fixed messages, e.g. "database is locked"
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is None or sqlstate.startswith("08"):
        return "cannot connect"
    return f"SQLSTATE {sqlstate}"
