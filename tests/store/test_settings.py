"""Settings read and replaced: the revocation epoch's storage, on every backend."""

from __future__ import annotations

from bearer_grpc.store import TestableStore
from tests.store.conftest import OpenStore


def test_get_setting_reads_without_creating(store: TestableStore) -> None:
    assert store.get_setting("revocation_epoch") is None
    assert store.get_setting("revocation_epoch") is None
    assert store.get_or_create_setting("revocation_epoch", "e-1") == "e-1"
    assert store.get_setting("revocation_epoch") == "e-1"


def test_replace_setting_replaces_a_value_or_creates_it(store: TestableStore) -> None:
    store.replace_setting("revocation_epoch", "e-1")
    assert store.get_setting("revocation_epoch") == "e-1"
    store.replace_setting("revocation_epoch", "e-2")
    assert store.get_setting("revocation_epoch") == "e-2"
    assert store.get_or_create_setting("revocation_epoch", "e-3") == "e-2"
    assert store.get_setting("other") is None


def test_a_replaced_setting_is_seen_by_another_store_on_the_database(open_: OpenStore) -> None:
    first, second = open_(), open_()
    assert first.get_or_create_setting("revocation_epoch", "e-1") == "e-1"
    second.replace_setting("revocation_epoch", "e-2")
    assert first.get_setting("revocation_epoch") == "e-2"
