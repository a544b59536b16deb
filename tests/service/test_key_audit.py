"""The service's own key changes are in the audit trail: its first key, a scheduled key, a
retired key deleted and keys sealed, each one event (actor ``token service``) written with
the change and logged once, however many replicas race for it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
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


@pytest.fixture
def store(backend_url: str) -> Iterator[SqlStore]:
    opened = open_store(backend_url)
    try:
        yield opened
    finally:
        opened.close()


def _key_events(store: SqlStore) -> list[AuditEvent]:
    return [e for e in store.audit_events() if e.action.startswith("key.")]


def _logged_actions(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [getattr(r, "action", "") for r in caplog.records if r.name == "bearer_grpc.audit"]


def test_replicas_racing_for_the_first_key_write_one_event(
    backend_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bearer_grpc.audit")
    stores = [open_store(backend_url) for _ in range(4)]
    together = threading.Barrier(len(stores))

    def start(store: SqlStore) -> None:
        together.wait(timeout=10)
        TokenAuthority(store).start()

    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            list(pool.map(start, stores))
        [key] = stores[0].list_keys()
        [event] = _key_events(stores[0])
    finally:
        for store in stores:
            store.close()
    assert (event.actor, event.action, event.target) == ("token service", "key.rotate", key.kid)
    assert dict(event.detail) == {"alg": key.alg, "delay": 0, "trigger": "first key"}
    assert _logged_actions(caplog) == ["key.rotate"]


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


def test_a_retired_key_is_deleted_with_an_event_and_only_once(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bearer_grpc.audit")
    clock = FrozenClock(float(int(time.time())))
    settings = ServiceSettings()
    authority = TokenAuthority(store, settings, clock=clock)
    authority.start()
    [old] = store.list_keys()
    new = Admin(store, clock=clock).rotate_key(algorithm="ES256", delay=0, kek=None)
    other = TokenAuthority(store, settings, clock=clock)  # a replica sharing the store
    other.start()
    authority.sync()  # both rings hold both keys

    clock.now = new.not_before + settings.key_retention - 1  # the old key still published
    assert authority.housekeeping() == 0
    assert [e.action for e in _key_events(store)] == ["key.rotate", "key.rotate"]

    clock.now += 1
    assert authority.housekeeping() >= 1
    assert other.housekeeping() == 0  # already deleted: no second event
    assert [r.kid for r in store.list_keys()] == [new.kid]
    retired = _key_events(store)[0]
    assert (retired.actor, retired.action, retired.target) == (
        "token service",
        "key.retire",
        old.kid,
    )
    assert dict(retired.detail) == {"alg": old.alg}
    assert _logged_actions(caplog).count("key.retire") == 1


def test_sealing_keys_left_in_the_clear_is_one_event_per_key(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bearer_grpc.audit")
    TokenAuthority(store).start()  # keys in the clear, no key-encryption key yet
    Admin(store).rotate_key(algorithm="EdDSA", delay=60, kek=None)
    kids = {r.kid for r in store.list_keys()}
    caplog.clear()  # the lines of those two keys' events

    TokenAuthority(store, kek=KEK).start()
    TokenAuthority(store, kek=KEK).start()  # nothing left to seal: no more events

    sealed = [e for e in _key_events(store) if e.action == "key.seal"]
    assert {e.target for e in sealed} == kids and len(sealed) == len(kids)
    assert {e.actor for e in sealed} == {"token service"}
    assert _logged_actions(caplog) == ["key.seal"] * len(kids)


def test_a_cli_rotation_that_seals_names_the_cli(store: SqlStore) -> None:
    TokenAuthority(store).start()  # a key in the clear
    [clear] = store.list_keys()
    staged = Admin(store).rotate_key(algorithm="ES256", delay=60, kek=KEK)
    events = [(e.actor, e.action, e.target) for e in _key_events(store)]
    assert events[:2] == [
        ("local CLI", "key.rotate", staged.kid),
        ("local CLI", "key.seal", clear.kid),
    ]
