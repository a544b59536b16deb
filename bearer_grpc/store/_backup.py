"""An online copy of a SQLite store: consistent, private, and never half written.

:func:`backup_sqlite` copies the database with SQLite's backup API in one step, which
reads one snapshot of it (WAL lets a running ``serve`` go on writing meanwhile). The copy
is written to a new private file (mode 0600) beside the target, synced, and only then
renamed over the target: a failure leaves the target as it was, and no partial copy.
The store itself is only read: it is not migrated, and a missing store is not created.

PostgreSQL stores are backed up with PostgreSQL's own tools (``pg_dump`` or a
point-in-time recovery setup), which copy one consistent snapshot too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sqlalchemy import exc
from sqlalchemy.engine import make_url

from bearer_grpc.store import _postgres, _sqlite
from bearer_grpc.store._errors import StoreError


def sqlite_path(url: str) -> Path:
    """The database file of a ``sqlite:///PATH`` store URL.

    Raises:
        StoreError: The URL names PostgreSQL (the message points at ``pg_dump``), an
            in-memory database, or no database this library opens.
    """
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise StoreError("invalid store URL: expected sqlite:///PATH or postgresql://...") from None
    if parsed.drivername in _postgres.SCHEMES:
        raise StoreError(
            "store backup copies SQLite stores only: back up PostgreSQL with pg_dump "
            "(or point-in-time recovery), then run store new-epoch after a restore"
        )
    if parsed.drivername not in _sqlite.SCHEMES:
        raise StoreError(f"unsupported store URL scheme {parsed.drivername!r}")
    database = parsed.database
    if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
        raise StoreError("an in-memory SQLite store cannot be backed up")
    return Path(database)


def backup_sqlite(database: Path, target: Path) -> int:
    """Copy the SQLite database ``database`` to ``target``, online and atomically.

    Args:
        database: The store's database file (it must exist; it is only read).
        target: Where the copy goes; replaced only once the copy is complete.

    Returns:
        The size of the copy in bytes.

    Raises:
        StoreError: The store cannot be read, or the copy cannot be written (the
            message names the path and the reason; ``target`` is left as it was).
    """
    if not database.is_file():
        raise StoreError(f"no SQLite store at {database}")
    target = target.absolute()
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as err:
        raise StoreError(f"cannot write the backup {target}: {err.strerror}") from None
    os.close(fd)
    try:
        _sqlite.copy_database(database, partial)
        size = partial.stat().st_size
        try:
            os.replace(partial, target)
        except OSError as err:
            raise StoreError(f"cannot write the backup {target}: {err.strerror}") from None
        _sync_directory(target.parent)
    except BaseException:
        for leftover in (partial, partial.with_name(partial.name + "-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        raise
    return size


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (where the platform can sync a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
