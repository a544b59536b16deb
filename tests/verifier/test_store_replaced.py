"""A TokenService whose store is replaced or restored: its revocation sequence restarts.

The verifier resumes ``WatchRevocations`` after the last sequence it saw. If the store
behind the service changed (a new store: another ``bearer-grpc-epoch``; a restored
backup: a ``bearer-grpc-cursor`` behind that position), the new revocations are numbered
from below it again, and resuming there would skip them forever: the verifier must
follow the new log from the start. Waits are deadlines (``wait_until``), never sleeps.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bearer_grpc.core.errors import TokenRevoked
from bearer_grpc.store import sqlite_url
from tests.harness import RunningService, wait_until
from tests.verifier.conftest import Flavour, Handle, issue, refused, restarted, revoke, stop

OLD_LOG = 3
"""Revocations the verifier has seen on the first store (its sequence afterwards)."""


def _follow_first_store(verifier: Handle, service: RunningService) -> list[str]:
    """Revoke OLD_LOG tokens and wait until the verifier refuses them all."""
    tokens = [issue(service) for _ in range(OLD_LOG)]
    for token in tokens:
        verifier.verify(token)
    assert [revoke(service, token) for token in tokens][-1] == OLD_LOG
    wait_until(lambda: all(_refuses(verifier, token) for token in tokens), timeout=5.0)
    assert verifier.verifier.local.revocations.sequence == OLD_LOG
    return tokens


def test_new_store_at_the_same_address_is_followed_from_the_start(
    flavour: Flavour,
    service: RunningService,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    verifier = flavour.from_token_service(service.target)
    _follow_first_store(verifier, service)
    stop(service)

    with restarted(sqlite_url(tmp_path / "new-data-dir"), service.target) as fresh:
        token = issue(fresh)
        assert revoke(fresh, token) == 1  # numbered below what the verifier has seen
        # The new store has new keys: fetched when the verifier reconnects.
        wait_until(lambda: verifier.verifier.local.knows_kid_of(token), timeout=5.0)
        wait_until(lambda: refused(lambda: verifier.verify(token), TokenRevoked), timeout=5.0)
        wait_until(lambda: fresh.authority.epoch == verifier.verifier._follower.feed.epoch)
    assert "revocation log restarted (another store)" in caplog.text


def test_store_restored_from_an_older_backup_is_followed_from_the_start(
    flavour: Flavour,
    service: RunningService,
    store_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    database = store_url.removeprefix("sqlite:///")
    backup = str(tmp_path / "backup.db")
    verifier = flavour.from_token_service(service.target)
    _sqlite_copy(database, backup)  # before any revocation: the restored log is empty
    old = _follow_first_store(verifier, service)
    stop(service)
    _sqlite_copy(backup, database)  # same store id (epoch), older log

    with restarted(store_url, service.target) as restored:
        token = issue(restored)
        assert revoke(restored, token) == 1
        wait_until(lambda: refused(lambda: verifier.verify(token), TokenRevoked), timeout=5.0)
        # The revocations it knew stay (harmless: the restored store lost them).
        assert all(_refuses(verifier, token) for token in old)
    assert "revocation log restarted (its store is behind this verifier)" in caplog.text


def _refuses(verifier: Handle, cached: str) -> bool:
    return refused(lambda: verifier.lookup(cached), TokenRevoked)


def _sqlite_copy(source: str, target: str) -> None:
    """Copy a SQLite database with the online backup API (safe with WAL and open users)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
