"""``backup_sqlite``: an online copy of a SQLite store, private and never half written."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bearer_grpc.store import (
    DATABASE_FILENAME,
    SqlStore,
    StoreError,
    backup_sqlite,
    open_store,
    sqlite_path,
    sqlite_url,
)

NOW = 1_700_000_000


@pytest.fixture
def live(tmp_path: Path) -> Iterator[SqlStore]:
    store = open_store(sqlite_url(tmp_path / "data"))
    yield store
    store.close()


def _database(tmp_path: Path) -> Path:
    return tmp_path / "data" / DATABASE_FILENAME


def _revocations(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT sequence FROM revocations ORDER BY sequence").fetchall()
    conn.close()
    return [row[0] for row in rows]


def test_backup_is_a_private_complete_store(live: SqlStore, tmp_path: Path) -> None:
    live.revoke("jti-1", NOW + 60, NOW)
    target = tmp_path / "backups" / "store.db"
    target.parent.mkdir()
    size = backup_sqlite(_database(tmp_path), target)
    assert size == target.stat().st_size > 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(os.listdir(target.parent)) == ["store.db"]  # no partial file, no journal
    copy = open_store(f"sqlite:///{target}")
    try:
        assert [r.jti for r in copy.revocations_after(0)] == ["jti-1"]
    finally:
        copy.close()


def test_backup_while_writes_commit_is_one_consistent_snapshot(
    live: SqlStore, tmp_path: Path
) -> None:
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            live.revoke(f"jti-{n}", NOW + 60, NOW)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        copies = []
        for i in range(5):
            target = tmp_path / f"copy-{i}.db"
            backup_sqlite(_database(tmp_path), target)
            copies.append(_revocations(target))
    finally:
        stop.set()
        writer.join(10)
    for sequences in copies:  # a gap-free prefix of the log, whatever moment it was taken
        assert sequences == list(range(1, len(sequences) + 1))
    assert len(copies[-1]) > 0


def test_backup_replaces_an_older_backup_whole(live: SqlStore, tmp_path: Path) -> None:
    target = tmp_path / "store.db"
    backup_sqlite(_database(tmp_path), target)
    live.revoke("jti-1", NOW + 60, NOW)
    backup_sqlite(_database(tmp_path), target)
    assert _revocations(target) == [1]


def test_unwritable_target_fails_and_leaves_store_and_target_as_they_were(
    live: SqlStore, tmp_path: Path
) -> None:
    live.revoke("jti-1", NOW + 60, NOW)
    before = _database(tmp_path).read_bytes()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match=r"cannot write the backup .*a-file/store\.db"):
        backup_sqlite(_database(tmp_path), blocker / "store.db")
    assert _database(tmp_path).read_bytes() == before
    assert blocker.read_text() == "not a directory"
    assert sorted(os.listdir(tmp_path)) == ["a-file", "data"]


def test_missing_store_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no SQLite store at"):
        backup_sqlite(tmp_path / "nothing" / DATABASE_FILENAME, tmp_path / "store.db")
    assert os.listdir(tmp_path) == []


def test_not_a_database_fails_without_a_partial_copy(tmp_path: Path) -> None:
    fake = tmp_path / "fake.db"
    fake.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="cannot back up the store"):
        backup_sqlite(fake, tmp_path / "store.db")
    assert os.listdir(tmp_path) == ["fake.db"]


def test_sqlite_path_of_urls(tmp_path: Path) -> None:
    assert sqlite_path(f"sqlite:///{tmp_path}/x.db") == tmp_path / "x.db"
    with pytest.raises(StoreError, match="pg_dump"):
        sqlite_path("postgresql://tokens@db.internal/tokens")
    with pytest.raises(StoreError, match="in-memory"):
        sqlite_path("sqlite:///:memory:")
    with pytest.raises(StoreError, match="unsupported"):
        sqlite_path("mysql://x/y")


def test_target_that_is_a_directory_fails_without_a_partial_copy(
    live: SqlStore, tmp_path: Path
) -> None:
    (tmp_path / "store.db").mkdir()
    with pytest.raises(StoreError, match="cannot write the backup"):
        backup_sqlite(_database(tmp_path), tmp_path / "store.db")
    assert sorted(os.listdir(tmp_path)) == ["data", "store.db"]
    assert os.listdir(tmp_path / "store.db") == []
