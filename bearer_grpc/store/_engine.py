"""From a store URL to an open store: the one place that picks the database from the URL.

The URL's scheme chooses the dialect (``_sqlite`` or ``_postgres``), which builds the
engine; :class:`~bearer_grpc.store.SqlStore` then runs on it. Both engines hide statement
parameters from error messages (``hide_parameters=True``).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import exc
from sqlalchemy.engine import URL, make_url

from bearer_grpc.store import _postgres, _sqlite
from bearer_grpc.store._dialect import Dialect
from bearer_grpc.store._errors import StoreError
from bearer_grpc.store._sql import SqlStore

DATABASE_FILENAME = "bearer-grpc.db"
"""Name of the SQLite database file inside a data directory."""


def sqlite_url(data_dir: Path) -> str:
    """The URL of the embedded SQLite store in a data directory.

    Creates the directory (mode 0700, as it holds private keys) if it does not exist.

    Args:
        data_dir: Directory for the database, e.g. ``./bearer-grpc-data``.

    Returns:
        ``sqlite:///<data_dir>/bearer-grpc.db`` with an absolute path.
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return f"sqlite:///{data_dir.resolve() / DATABASE_FILENAME}"


def is_postgres_url(url: str) -> bool:
    """Whether :func:`open_store` would open ``url`` on PostgreSQL.

    Args:
        url: A store URL, e.g. the value of ``--store``.

    Returns:
        True for the PostgreSQL schemes (``postgresql://``, ``postgres://``,
        ``postgresql+psycopg://``); False for any other URL, and for text that is no URL.
    """
    try:
        return make_url(url).drivername in _postgres.SCHEMES
    except exc.ArgumentError:
        return False


def open_store(url: str, *, busy_timeout_s: float = 5.0) -> SqlStore:
    """Open the store at ``url``, creating and migrating its schema as needed.

    Args:
        url: ``sqlite:///PATH`` (relative) or ``sqlite:////ABSOLUTE/PATH``, or
            ``postgresql://USER:PASSWORD@HOST:PORT/DB`` (driven by psycopg 3). The URL query
            is passed to the driver, e.g. ``?options=-csearch_path%3Dmyschema`` selects a
            PostgreSQL schema. A new SQLite file is created with mode 0600.
        busy_timeout_s: SQLite only: how long a write waits for another writer's lock
            before failing with StoreUnavailable. Default 5 seconds.

    Returns:
        The open store. Close it with :meth:`SqlStore.close`.

    Raises:
        StoreError: The URL is invalid or unsupported, psycopg is not installed, or the
            database schema is newer than this release knows.
        StoreUnavailable: The database cannot be reached or stays locked.
    """
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        # ``from None``: the parser's message repeats the URL, password included.
        raise StoreError("invalid store URL: expected sqlite:///PATH or postgresql://...") from None
    dialect = _dialect(parsed, busy_timeout_s)
    try:
        return SqlStore(dialect)
    except BaseException:
        dialect.engine.dispose()
        raise


def _dialect(url: URL, busy_timeout_s: float) -> Dialect:
    """The dialect of the database a URL names, chosen by its scheme."""
    if url.drivername in _sqlite.SCHEMES:
        return _sqlite.SQLite(url, busy_timeout_s=busy_timeout_s)
    if url.drivername in _postgres.SCHEMES:
        return _postgres.PostgreSQL(url)
    raise StoreError(
        f"unsupported store URL scheme {url.drivername!r}: use sqlite:/// or postgresql://"
    )
