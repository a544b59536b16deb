"""How a store URL becomes a configured SQLAlchemy engine, and :func:`open_store`.

- **SQLite** (``sqlite:///PATH``): the database file is created with mode 0600; every
  connection runs in WAL mode with ``synchronous=FULL`` and foreign keys on; and every
  write transaction starts with ``BEGIN IMMEDIATE`` (the pysqlite event-hook recipe
  below), so writers queue on the database lock for up to ``busy_timeout_s`` and then
  fail as StoreUnavailable. Transactions marked :data:`READ_ONLY` begin DEFERRED instead.
- **PostgreSQL** (``postgresql://...``, driven by psycopg 3): pre-ping on checkout (a
  connection the server dropped, e.g. on restart, is replaced before use), and connect,
  keepalive and TCP timeouts so a lost server fails calls within seconds instead of
  hanging them (:func:`postgres_defaults`).

Both engines hide statement parameters from error messages (``hide_parameters=True``).
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url

from bearer_grpc.store._errors import StoreError

if TYPE_CHECKING:
    from bearer_grpc.store._sql import SqlStore

DATABASE_FILENAME = "bearer-grpc.db"
"""Name of the SQLite database file inside a data directory."""

READ_ONLY = "bearer_grpc_read_only"
"""Execution option marking a read-only transaction.

SQLite then begins DEFERRED, so readers do not queue behind writers (WAL lets them read
while a write is in progress).
"""

_PSYCOPG_MISSING = (
    "PostgreSQL support needs the 'postgres' extra: pip install 'bearer-grpc[postgres]'"
)
_SQLITE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite"})
_POSTGRES_DRIVERS = frozenset({"postgresql", "postgres", "postgresql+psycopg"})
_PG_CONNECT_TIMEOUT_S = 10
_PG_TCP_USER_TIMEOUT_MS = 15_000


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
    # Imported here, not at the top: _sql imports READ_ONLY from this module.
    from bearer_grpc.store._sql import SqlStore

    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        # ``from None``: the parser's message repeats the URL, password included.
        raise StoreError("invalid store URL: expected sqlite:///PATH or postgresql://...") from None
    if parsed.drivername in _SQLITE_DRIVERS:
        engine = _sqlite_engine(parsed, busy_timeout_s)
    elif parsed.drivername in _POSTGRES_DRIVERS:
        engine = _postgres_engine(parsed)
    else:
        raise StoreError(
            f"unsupported store URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql://"
        )
    try:
        return SqlStore(engine)
    except BaseException:
        engine.dispose()
        raise


# -- SQLite ----------------------------------------------------------------------------------


def _sqlite_engine(url: URL, busy_timeout_s: float) -> Engine:
    database = url.database
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        raise StoreError("an in-memory SQLite store is not supported: give a file path")
    _create_private_file(Path(database))
    engine = create_engine(
        url.set(drivername="sqlite+pysqlite"),
        connect_args={"timeout": busy_timeout_s},  # sqlite3 sets it as the busy_timeout
        hide_parameters=True,
    )
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _create_private_file(path: Path) -> None:
    """Create an empty database file with mode 0600 unless it exists.

    SQLite creates the ``-wal`` and ``-shm`` files with the mode of the database file, so
    they are private too.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as err:
        raise StoreError(f"cannot create the SQLite database file: {err.strerror}") from err
    os.close(fd)


def _on_sqlite_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # Stop pysqlite from issuing BEGIN itself: _on_sqlite_begin does it, as SQLAlchemy's
    # pysqlite documentation recommends.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL syncs the WAL on every commit: an acknowledged write survives a crash or
        # power loss, not only kill -9.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


# -- PostgreSQL ------------------------------------------------------------------------------


def _postgres_engine(url: URL) -> Engine:
    try:
        installed = importlib.util.find_spec("psycopg") is not None
    except (ImportError, ValueError):
        installed = False
    if not installed:
        raise StoreError(_PSYCOPG_MISSING)
    return create_engine(
        url.set(drivername="postgresql+psycopg"),
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args=postgres_defaults(url, "bearer-grpc"),
    )


def postgres_defaults(url: URL, application: str) -> dict[str, object]:
    """libpq connection parameters the URL does not set itself.

    - ``connect_timeout``: an unreachable server fails a call (StoreUnavailable) instead of
      hanging it.
    - TCP keepalives and ``tcp_user_timeout``: a connection whose peer vanished without a
      word (a failover, a dropped network path) is noticed within seconds, not hours.
    - ``application_name`` ``APPLICATION/PID``: operators (and the tests) can tell this
      process's sessions apart in ``pg_stat_activity``.
    """
    defaults: dict[str, object] = {
        "connect_timeout": _PG_CONNECT_TIMEOUT_S,
        "keepalives": 1,
        "keepalives_idle": 15,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": _PG_TCP_USER_TIMEOUT_MS,
        "application_name": f"{application}/{os.getpid()}",
    }
    return {name: value for name, value in defaults.items() if name not in url.query}


def listener_connect_kwargs(engine: Engine) -> dict[str, Any]:
    """psycopg arguments for a connection of its own to the engine's database (the
    ``LISTEN`` connection): the engine's URL with :func:`postgres_defaults`."""
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    kwargs.pop("context", None)  # SQLAlchemy's type adapters: not for a raw connection
    return {**kwargs, **postgres_defaults(engine.url, "bearer-grpc-listener")}
