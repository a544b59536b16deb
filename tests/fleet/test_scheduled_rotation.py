"""``serve --rotate-keys-every``: every replica checks, exactly one stages the next key.

In-process TokenServers (``tests.harness.running_service``) on one store: the rotation is
the servers' own sync loop at work, without the cost of starting processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from bearer_grpc.service.keyring import PUBLISH_DELAY, KeyRing
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import KeyRecord, TestableStore, open_store, sqlite_url
from tests.harness import RunningService, pg_dsn, pg_schema_url, running_service, wait_until

EVERY = 3600


def _seed_old_key(url: str, age: int) -> KeyRecord:
    """A store whose only key was created ``age`` seconds ago."""
    store: TestableStore = open_store(url)  # add_key: set up a key no rotation would make
    try:
        now = int(time.time())
        record = KeyRing(store, kek=None, retention=0).new_record(
            "ES256", not_before=now - age, now=now - age
        )
        store.add_key(record)
        return record
    finally:
        store.close()


@contextmanager
def _replicas(url: str, count: int) -> Iterator[list[RunningService]]:
    settings = ServiceSettings(rotate_keys_every=EVERY)
    with ExitStack() as stack:
        services = [
            stack.enter_context(running_service(url, settings=settings)) for _ in range(count)
        ]
        try:
            yield services
        finally:
            for service in services:  # drain the sync threads before the stores close
                service.loop.run(service.server.stop(grace=1))


def _kids(service: RunningService) -> list[str]:
    return [r.kid for r in service.authority.keys.records]


@pytest.mark.postgres
def test_due_rotation_is_staged_once_by_one_of_several_replicas() -> None:
    with pg_schema_url(pg_dsn()) as url:
        old = _seed_old_key(url, EVERY + 60)
        with _replicas(url, 3) as services:
            for service in services:  # every replica's key ring gets the new key...
                wait_until(lambda service=service: len(_kids(service)) == 2)  # type: ignore[misc]
            store = services[0].store
            keys = store.list_keys()
            assert len(keys) == 2  # ...and there is exactly one
            staged = keys[1]
            assert keys[0] == old
            # Published now, signing only after every verifier refreshed its keys.
            assert staged.not_before - staged.created_at >= PUBLISH_DELAY
            assert all(_kids(s) == [old.kid, staged.kid] for s in services)
            [event] = store.audit_events()  # one event, by the replica that staged it
            assert (event.actor, event.action, event.target) == (
                "token service",
                "key.rotate",
                staged.kid,
            )
            assert event.detail["trigger"] == "schedule"


def test_rotation_not_due_stages_nothing(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "data")
    old = _seed_old_key(url, EVERY - 60)
    with _replicas(url, 1) as (service,):
        # Two announced writes, each read by the loop: once the second is read, the loop
        # has finished the iteration that read the first, rotation check included.
        now = int(time.time())
        for sequence, jti in enumerate(("j1", "j2"), start=1):
            service.store.revoke(jti, now + 60, now)
            wait_until(
                lambda sequence=sequence: service.authority.revocations.cursor >= sequence  # type: ignore[misc]
            )
        assert service.store.list_keys() == [old]


def test_due_rotation_on_sqlite_reaches_the_ring_in_process(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "data")
    old = _seed_old_key(url, EVERY + 60)
    with _replicas(url, 1) as (service,):
        wait_until(lambda: len(_kids(service)) == 2)
        assert _kids(service)[0] == old.kid
