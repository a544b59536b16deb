"""The SQLite dialect: one file, one writer at a time, announcements within this process.

- **Engine** (``sqlite:///PATH``): the database file is created with mode 0600; every
  connection runs in WAL mode with ``synchronous=FULL`` and foreign keys on. An existing
  database is not used as found (:func:`check_private`): its files and its directory must
  belong to this user and be writable by no one else (refused otherwise); files others
  may read are made private again, with a warning.
- **Transactions**: every write transaction starts with ``BEGIN IMMEDIATE`` (the pysqlite
  event-hook recipe below), so writers queue on the database lock for up to
  ``busy_timeout_s`` and then fail as StoreUnavailable. That lock serializes all writers,
  so the store's named locks need nothing more. Read transactions begin DEFERRED, so
  readers do not queue behind writers (WAL lets them read while a write is in progress).
- **Announcements** reach the listeners of this process (:class:`LocalChanges`) after the
  commit. Commits by other processes (the CLI's, another server's) are noticed by the
  listener itself, which asks SQLite's ``PRAGMA data_version`` every
  :data:`OTHERS_POLL` seconds on a connection of its own (a read of the shared-memory
  header, no disk work).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar, Final

from sqlalchemy import Connection, Insert, Table, create_engine, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL

from bearer_grpc.store._errors import StoreError

log = logging.getLogger("bearer_grpc.store")

OTHERS_POLL: Final = 0.1
"""Seconds between two looks for commits by other processes."""
SCHEMES: Final = frozenset({"sqlite", "sqlite+pysqlite"})
"""URL schemes of SQLite stores."""

_READ_ONLY = "bearer_grpc_read_only"
"""Execution option of read transactions: they begin DEFERRED."""
_ANNOUNCED = "bearer_grpc_announced"
"""``Connection.info`` flag: the transaction announced a change."""
# Extended error codes of a violated PRIMARY KEY or UNIQUE constraint.
_UNIQUE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


class SQLite:
    """The SQLite dialect of one open store (see the module docstring).

    Args:
        url: A ``sqlite:///PATH`` URL naming a file; the file is created (mode 0600) if
            missing, but not its directory.
        busy_timeout_s: How long a write waits for another writer's lock before failing
            with StoreUnavailable.

    Raises:
        StoreError: The URL names an in-memory database, or the file cannot be created.
    """

    name: ClassVar[str] = "SQLite"

    def __init__(self, url: URL, *, busy_timeout_s: float) -> None:
        database = url.database
        if not database or database == ":memory:" or url.query.get("mode") == "memory":
            raise StoreError("an in-memory SQLite store is not supported: give a file path")
        path = Path(database)
        check_private(path.parent, repair=False)
        _create_private_file(path)
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if file.exists():
                check_private(file, repair=True)
        self.engine = create_engine(
            url.set(drivername="sqlite+pysqlite"),
            connect_args={"timeout": busy_timeout_s},  # sqlite3 sets it as the busy_timeout
            hide_parameters=True,
        )
        event.listen(self.engine, "connect", _on_connect)
        event.listen(self.engine, "begin", _on_begin)
        self._reader = self.engine.execution_options(**{_READ_ONLY: True})
        self._changes = LocalChanges(path)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A ``BEGIN IMMEDIATE`` transaction; its announcements are delivered after commit."""
        with self.engine.begin() as conn:
            conn.info.pop(_ANNOUNCED, None)
            yield conn
            announced = conn.info.pop(_ANNOUNCED, False)
        if announced:
            self._changes.announce()

    def read(self) -> AbstractContextManager[Connection]:
        """A ``BEGIN DEFERRED`` transaction."""
        return self._reader.begin()

    def lock(self, conn: Connection, *name: str, shared: bool = False) -> None:
        """Nothing to take: ``BEGIN IMMEDIATE`` already excludes every other writer."""

    def insert_ignore(self, table: Table, values: Mapping[str, Any], *, key: str) -> Insert:
        """``INSERT ... ON CONFLICT (key) DO NOTHING``."""
        return sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=[key])

    def announce(self, conn: Connection, kind: str, sequence: int) -> None:
        """Mark the transaction: :meth:`write` wakes this process's listeners after commit."""
        conn.info[_ANNOUNCED] = True

    def listener(self) -> LocalChanges:
        """The listener of this database's changes.

        It hears this process's at once, other processes' within :data:`OTHERS_POLL`
        seconds.
        """
        return self._changes

    def is_unique_violation(self, error: BaseException | None) -> bool:
        """Whether SQLite reported a violated PRIMARY KEY or UNIQUE constraint."""
        return isinstance(error, sqlite3.Error) and error.sqlite_errorname in _UNIQUE

    def unavailable_reason(self, error: BaseException | None) -> str:
        """SQLite's own message (fixed texts such as "database is locked")."""
        return str(error) if isinstance(error, sqlite3.Error) else "cannot connect"


def check_private(path: Path, *, repair: bool) -> None:
    """Refuse a file or directory of the store that others could change.

    Make private one that others could only read, when ``repair`` (saying so in a warning;
    without ``repair``, reading is left to the files' own modes).

    Raises:
        StoreError: It belongs to another user, or others may write to it: its contents
            cannot be trusted (an attacker may have planted a database or keys).
    """
    try:
        info = path.stat()
    except OSError as err:
        raise StoreError(f"cannot inspect {path}: {err.strerror}") from err
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != os.getuid():
        raise StoreError(f"{path} belongs to another user: refusing to use it")
    if mode & 0o022:
        raise StoreError(
            f"{path} is writable by others (mode {mode:04o}): refusing to use it; "
            "check its contents, then make it private (chmod go-rwx)"
        )
    if mode & 0o077 and repair:
        private = mode & 0o700
        os.chmod(path, private)
        log.warning(
            "store file or directory was open to others: made private",
            extra={"path": str(path), "mode": f"{mode:04o}", "now": f"{private:04o}"},
        )


def copy_database(database: Path, copy: Path) -> None:
    """Copy the database ``database`` into the empty file ``copy``: one consistent snapshot.

    Every page is copied in one step of SQLite's backup API (so one consistent snapshot,
    read while writers go on), then the copy is turned into one self-contained file
    (rollback-journal mode), checked and synced to disk. ``database`` is opened read-only:
    nothing in it changes.

    Raises:
        StoreError: ``database`` cannot be read, or the copy cannot be written or does
            not check out.
    """
    try:
        source = sqlite3.connect(f"{database.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the store {database}: {err}") from None
    try:
        target = sqlite3.connect(copy, isolation_level=None)
        try:
            source.backup(target)  # pages=-1: one step
            target.execute("PRAGMA journal_mode=DELETE")
            (check,) = target.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise StoreError(f"the backup of {database} does not check out: {check}")
        finally:
            target.close()
    except sqlite3.Error as err:
        raise StoreError(f"cannot back up the store {database}: {err}") from None
    finally:
        source.close()
    fd = os.open(copy, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # Stop pysqlite from issuing BEGIN itself: _on_begin does it, as SQLAlchemy's pysqlite
    # documentation recommends.
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


def _on_begin(conn: Connection) -> None:
    read_only = conn.get_execution_options().get(_READ_ONLY, False)
    conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


class LocalChanges:
    """The SQLite store's ``ChangeListener``: this process's changes and other processes' commits.

    It hears changes announced within this process, and commits other processes made (seen
    by their ``data_version``).

    Args:
        path: The database file, to watch for other processes' commits (None: only
            this process's announcements).
    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
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
        """See ``ChangeListener.listen``."""
        loop = asyncio.get_running_loop()

        def wake() -> None:
            with suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(on_change)

        unsubscribe = self.subscribe(wake)
        try:
            on_change()
            if self._path is None:
                await loop.create_future()  # until cancelled
            else:
                await _watch_others(self._path, on_change)
        finally:
            unsubscribe()


async def _watch_others(path: Path, on_change: Callable[[], None]) -> None:
    """Call ``on_change`` whenever another connection committed to the database.

    Until cancelled; an error such as a locked file only skips a look.
    """
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        seen: int | None = None
        while True:
            version: int | None
            try:
                version = int(conn.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:
                version = seen
            if seen is not None and version != seen:
                on_change()
            seen = version
            await asyncio.sleep(OTHERS_POLL)
    finally:
        conn.close()
