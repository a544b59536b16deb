"""The service's own key changes are in the audit trail: its first key, a scheduled key, a
retired key deleted and keys sealed, each one event (actor ``token service``) written with
the change and logged once, however many replicas race for it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from bearer_grpc.core.keys import KeyEncryptionKey
from bearer_grpc.service.admin import Admin
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.keyring import KeyRing
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import AuditEvent, SqlStore, open_store
from bearer_grpc.testing import FrozenClock

KEK = KeyEncryptionKey(b"a key-encryption key of 32 bytes")


REPLICAS = 4


@pytest.fixture
def store(backend_url: str) -> Iterator[SqlStore]:
    opened = open_store(backend_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def racers(backend_url: str) -> Iterator[list[SqlStore]]:
    """The stores of as many replicas, each its own connections to the same database."""
    opened = [open_store(backend_url) for _ in range(REPLICAS)]
    try:
        yield opened
    finally:
        for store in opened:
            store.close()


def _key_events(store: SqlStore) -> list[AuditEvent]:
    return [e for e in store.audit_events() if e.action.startswith("key.")]


def _logged_actions(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [getattr(r, "action", "") for r in caplog.records if r.name == "bearer_grpc.audit"]


def _at_once(calls: Sequence[Callable[[], object]]) -> None:
    """Run ``calls`` together, each in a thread of its own, released by one barrier."""
    together = threading.Barrier(len(calls))

    def go(call: Callable[[], object]) -> None:
        together.wait(timeout=10)
        call()

    with ThreadPoolExecutor(len(calls)) as pool:
        list(pool.map(go, calls))


def test_replicas_racing_for_the_first_key_write_one_event(
    store: SqlStore, racers: list[SqlStore], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bearer_grpc.audit")
    _at_once([TokenAuthority(racer).start for racer in racers])
    [key] = store.list_keys()
    [event] = _key_events(store)
    assert (event.actor, event.action, event.target) == ("token service", "key.rotate", key.kid)
    assert dict(event.detail) == {"alg": key.alg, "delay": 0, "trigger": "first key"}
    assert _logged_actions(caplog) == ["key.rotate"]


def test_replicas_racing_to_seal_write_one_event_per_key(
    store: SqlStore, racers: list[SqlStore], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bearer_grpc.audit")
    TokenAuthority(store).start()  # keys in the clear, no key-encryption key yet
    Admin(store).rotate_key(algorithm="EdDSA", delay=60, kek=None)
    kids = sorted(r.kid for r in store.list_keys())
    caplog.clear()  # the lines of those two keys' events
    _at_once([TokenAuthority(racer, kek=KEK).start for racer in racers])
    sealed = [e for e in _key_events(store) if e.action == "key.seal"]
    assert sorted(e.target for e in sealed) == kids
    assert {e.actor for e in sealed} == {"token service"}
    assert _logged_actions(caplog) == ["key.seal"] * len(kids)


def test_a_scheduled_key_is_one_event_with_its_delay(store: SqlStore) -> None:
    now = int(time.time())
    ring = KeyRing(store, kek=None, retention=0)
    store.add_key(ring.new_record("ES256", not_before=now - 7200, now=now - 7200))
    staged = ring.rotate_if_due("ES256", every=3600, now=now, delay=600)
    assert staged is not None
    assert ring.rotate_if_due("ES256", every=3600, now=now, delay=600) is None  # not due now
    [event] = _key_events(store)
    assert (event.actor, event.action, event.target, event.at) == (
        "token service",
        "key.rotate",
        staged.kid,
        now,
    )
    assert dict(event.detail) == {"alg": "ES256", "delay": 600, "trigger": "schedule"}


def test_replicas_racing_to_retire_a_key_write_one_event(
    store: SqlStore, racers: list[SqlStore], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bearer_grpc.audit")
    clock = FrozenClock(float(int(time.time())))
    settings = ServiceSettings()
    TokenAuthority(store, settings, clock=clock).start()
    [old] = store.list_keys()
    new = Admin(store, clock=clock).rotate_key(algorithm="ES256", delay=0, kek=None)
    replicas = [TokenAuthority(racer, settings, clock=clock) for racer in racers]
    for replica in replicas:
        replica.start()  # every ring holds both keys

    clock.now = new.not_before + settings.key_retention - 1  # the old key still published
    _at_once([replica.housekeeping for replica in replicas])
    assert [e.action for e in _key_events(store)] == ["key.rotate", "key.rotate"]

    clock.now += 1
    _at_once([replica.housekeeping for replica in replicas])
    assert [r.kid for r in store.list_keys()] == [new.kid]
    retired = _key_events(store)[0]
    assert (retired.actor, retired.action, retired.target) == (
        "token service",
        "key.retire",
        old.kid,
    )
    assert dict(retired.detail) == {"alg": old.alg}
    assert [e.action for e in _key_events(store)].count("key.retire") == 1
    assert _logged_actions(caplog).count("key.retire") == 1


def test_a_cli_rotation_that_seals_names_the_cli(store: SqlStore) -> None:
    TokenAuthority(store).start()  # a key in the clear
    [clear] = store.list_keys()
    staged = Admin(store).rotate_key(algorithm="ES256", delay=60, kek=KEK)
    events = [(e.actor, e.action, e.target) for e in _key_events(store)]
    assert events[:2] == [
        ("local CLI", "key.rotate", staged.kid),
        ("local CLI", "key.seal", clear.kid),
    ]
