"""The Store contract, run against every backend (see conftest.py), then backend specifics.

The suite talks to a :class:`TestableStore`: the Store, plus the few methods tests use to
set up and probe it (``add_key``, ``active_revocations``, ``ping``).

Each test in the first part takes the ``store`` (or ``open_``) fixture and so runs once on
SQLite and once on PostgreSQL. Races are provoked with threads released by one barrier;
nothing sleeps.
"""

from __future__ import annotations

import sqlite3
import stat
import sys
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.engine import make_url

from bearer_grpc.core.verification import RevocationKind
from bearer_grpc.store import (
    Account,
    AccountKind,
    AlreadyExists,
    KeyRecord,
    RefreshToken,
    Revocation,
    RotationStatus,
    StoreError,
    StoreUnavailable,
    TestableStore,
    is_postgres_url,
    open_store,
    sqlite_url,
)
from bearer_grpc.store._migrations import LATEST_VERSION
from bearer_grpc.store._schema import schema_migrations
from tests.store._records import HOUR, NOW, key, refresh
from tests.store.conftest import OpenStore

THREADS = 8
CLIENT = AccountKind.CLIENT
USER = AccountKind.USER

T = TypeVar("T")


def run_concurrently(fn: Callable[[int], T], threads: int = THREADS) -> list[T]:
    """Call ``fn(0..threads-1)`` from as many threads, all released at once."""
    barrier = threading.Barrier(threads, timeout=30)

    def released(index: int) -> T:
        barrier.wait()
        return fn(index)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(released, range(threads)))


def principal(
    name: str = "alice",
    kind: AccountKind = CLIENT,
    scopes: tuple[str, ...] = ("orders.read", "orders.write"),
    audiences: tuple[str, ...] = ("orders", "billing"),
) -> Account:
    return Account(
        name=name,
        kind=kind,
        credential_hash=f"hash-of-{name}",
        scopes=scopes,
        audiences=audiences,
        created_at=NOW,
        id=f"id-{name}",
    )


def users(store: TestableStore) -> None:
    """The users the refresh tokens below belong to: alice and bob."""
    store.add_account(principal("alice", USER))
    store.add_account(principal("bob", USER))


def remove(store: TestableStore, name: str, kind: AccountKind) -> bool:
    """Remove an account (its subject revoked as of NOW); True if it existed."""
    return store.remove_account(name, kind, clock=lambda: NOW, retention=HOUR) is not None


# -- principals ------------------------------------------------------------------------------


def test_add_principal_then_get_round_trips(store: TestableStore) -> None:
    store.add_account(principal("alice"))
    assert store.get_account("alice", CLIENT) == principal("alice")


def test_get_principal_unknown_or_other_kind_is_none(store: TestableStore) -> None:
    store.add_account(principal("alice", CLIENT))
    assert store.get_account("alice", USER) is None
    assert store.get_account("bob", CLIENT) is None


@pytest.mark.parametrize("second_kind", [CLIENT, USER])
def test_principal_name_is_shared_between_kinds(
    store: TestableStore, second_kind: AccountKind
) -> None:
    store.add_account(principal("alice", CLIENT))
    with pytest.raises(AlreadyExists, match="alice"):
        store.add_account(principal("alice", second_kind, scopes=()))
    assert store.get_account("alice", CLIENT) == principal("alice", CLIENT)


def test_list_principals_filters_kind_and_orders_by_name(store: TestableStore) -> None:
    for name in ["bob", "Zed", "alice", "_svc", "Émile"]:
        store.add_account(principal(name, CLIENT))
    store.add_account(principal("carol", USER))
    names = [p.name for p in store.list_accounts(CLIENT)]
    assert names == ["Zed", "_svc", "alice", "bob", "Émile"]  # code point order
    assert store.list_accounts(USER) == [principal("carol", USER)]


def test_empty_scopes_and_audiences_round_trip(store: TestableStore) -> None:
    store.add_account(principal("alice", USER, scopes=(), audiences=()))
    stored = store.get_account("alice", USER)
    assert stored is not None
    assert (stored.scopes, stored.audiences) == ((), ())


@pytest.mark.parametrize("scopes", [("orders read",), ("",), ("a\tb",)])
def test_scope_with_whitespace_is_rejected(store: TestableStore, scopes: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="whitespace"):
        store.add_account(principal("alice", scopes=scopes))
    assert store.get_account("alice", CLIENT) is None


def test_remove_principal_reports_whether_it_existed(store: TestableStore) -> None:
    store.add_account(principal("alice", CLIENT))
    assert remove(store, "alice", USER) is False
    assert store.get_account("alice", CLIENT) is not None
    assert remove(store, "alice", CLIENT) is True
    assert remove(store, "alice", CLIENT) is False
    assert store.get_account("alice", CLIENT) is None


def test_remove_principal_deletes_their_refresh_tokens(store: TestableStore) -> None:
    users(store)
    store.add_refresh_token(refresh("a0", family_id="fa", subject="alice"))
    store.add_refresh_token(refresh("b0", family_id="fb", subject="bob"))
    assert store.rotate_refresh_token("a0", refresh("a1"), NOW).status is RotationStatus.ROTATED

    assert remove(store, "alice", USER) is True

    assert store.get_refresh_token("a0") is None
    assert store.get_refresh_token("a1") is None
    rotation = store.rotate_refresh_token("a1", refresh("a2"), NOW)
    assert (rotation.status, rotation.previous) == (RotationStatus.INVALID, None)
    assert store.get_refresh_token("b0") == refresh("b0", family_id="fb", subject="bob")


# -- keys --------------------------------------------------------------------------------------


def test_keys_are_listed_oldest_first_ties_by_kid(store: TestableStore) -> None:
    for record in [key("k-new", NOW + 60), key("k-b"), key("k-a"), key("k-old", NOW - 60)]:
        store.add_key(record)
    listed = store.list_keys()
    assert [k.kid for k in listed] == ["k-old", "k-a", "k-b", "k-new"]
    assert listed[1] == key("k-a")  # private key bytes intact


def test_add_key_with_taken_kid_raises(store: TestableStore) -> None:
    store.add_key(key("k1"))
    with pytest.raises(AlreadyExists):
        store.add_key(key("k1", NOW + 1))
    assert store.list_keys() == [key("k1")]


def test_delete_key_reports_whether_it_existed(store: TestableStore) -> None:
    store.add_key(key("k1"))
    store.add_key(key("k2"))
    assert store.delete_key("k1") is True
    assert store.delete_key("k1") is False
    assert [k.kid for k in store.list_keys()] == ["k2"]


def test_add_key_if_shows_every_key_and_inserts_the_choice(store: TestableStore) -> None:
    store.add_key(key("k-b", NOW + 60))
    store.add_key(key("k-a"))
    seen: list[list[str]] = []

    def after_latest(stored: list[KeyRecord]) -> KeyRecord:
        seen.append([k.kid for k in stored])
        return key("k-c", stored[-1].not_before + 1)

    assert store.add_key_if(after_latest) == key("k-c", NOW + 61)
    assert seen == [["k-a", "k-b"]]
    assert [k.kid for k in store.list_keys()] == ["k-a", "k-b", "k-c"]


def test_add_key_if_none_inserts_nothing(store: TestableStore) -> None:
    store.add_key(key("k1"))
    assert store.add_key_if(lambda stored: None) is None
    assert store.list_keys() == [key("k1")]


def test_add_key_if_with_taken_kid_raises(store: TestableStore) -> None:
    store.add_key(key("k1"))
    with pytest.raises(AlreadyExists):
        store.add_key_if(lambda stored: key("k1", NOW + 1))
    assert store.list_keys() == [key("k1")]


def test_concurrent_add_key_if_decide_one_at_a_time(open_: OpenStore) -> None:
    """Every rotator stages "after the latest": no two may see the same latest key."""
    stores = [open_() for _ in range(THREADS)]
    stores[0].add_key(key("k-first"))

    def stage(index: int) -> KeyRecord | None:
        return stores[index].add_key_if(lambda stored: key(f"k-{index}", stored[-1].not_before + 1))

    run_concurrently(stage)
    not_befores = [k.not_before for k in stores[0].list_keys()]
    assert not_befores == list(range(NOW, NOW + THREADS + 1))


def test_concurrent_add_key_if_stages_a_due_rotation_once(open_: OpenStore) -> None:
    """Replicas that all find a rotation due: exactly one stages the new key."""
    stores = [open_() for _ in range(THREADS)]
    stores[0].add_key(key("k-old", NOW - HOUR))

    def rotate(index: int) -> KeyRecord | None:
        return stores[index].add_key_if(
            lambda stored: None if len(stored) > 1 else key(f"k-{index}", NOW + 120)
        )

    staged = [k for k in run_concurrently(rotate) if k is not None]
    assert len(staged) == 1
    assert stores[0].list_keys() == [key("k-old", NOW - HOUR), staged[0]]


# -- settings ----------------------------------------------------------------------------------


def test_get_or_create_setting_keeps_the_first_value(store: TestableStore) -> None:
    assert store.get_or_create_setting("issuer", "https://a") == "https://a"
    assert store.get_or_create_setting("issuer", "https://b") == "https://a"
    assert store.get_or_create_setting("other", "x") == "x"


def test_get_or_create_setting_concurrently_agrees_on_one_value(store: TestableStore) -> None:
    values = run_concurrently(lambda i: store.get_or_create_setting("kek-id", f"value-{i}"))
    assert len(set(values)) == 1
    assert store.get_or_create_setting("kek-id", "late") == values[0]


# -- refresh tokens: storing -----------------------------------------------------------------


def test_add_refresh_token_then_get_round_trips(store: TestableStore) -> None:
    store.add_refresh_token(refresh("t0"))
    assert store.get_refresh_token("t0") == refresh("t0")
    assert store.get_refresh_token("unknown") is None


def test_add_refresh_token_with_taken_hash_raises(store: TestableStore) -> None:
    store.add_refresh_token(refresh("t0"))
    with pytest.raises(AlreadyExists):
        store.add_refresh_token(refresh("t0", family_id="other"))
    assert store.get_refresh_token("t0") == refresh("t0")


# -- refresh tokens: rotation ----------------------------------------------------------------


def test_rotate_current_token_rotates(store: TestableStore) -> None:
    users(store)
    store.add_refresh_token(refresh("t0"))
    # The successor's family, subject, client, scopes and audience come from the previous.
    successor = RefreshToken(
        token_hash="t1",
        family_id="ignored",
        subject="ignored",
        client_id="ignored",
        scopes=("ignored",),
        audience="ignored",
        issued_at=NOW + 10,
        expires_at=NOW + 2 * HOUR,
        access_jti="",
        access_expires_at=NOW + 310,
    )

    rotation = store.rotate_refresh_token("t0", successor, NOW + 10)

    assert rotation.status is RotationStatus.ROTATED
    assert rotation.previous == refresh("t0")
    assert rotation.revocations == ()
    previous = store.get_refresh_token("t0")
    assert previous is not None and previous.used and not previous.revoked
    assert store.get_refresh_token("t1") == refresh(
        "t1", issued_at=NOW + 10, expires_at=NOW + 2 * HOUR, access_expires_at=NOW + 310
    )


def test_rotate_unknown_token_is_invalid(store: TestableStore) -> None:
    rotation = store.rotate_refresh_token("unknown", refresh("t1"), NOW)
    assert (rotation.status, rotation.previous, rotation.revocations) == (
        RotationStatus.INVALID,
        None,
        (),
    )
    assert store.get_refresh_token("t1") is None


@pytest.mark.parametrize("expires_at", [NOW, NOW - 1])
def test_rotate_expired_token_is_invalid_and_changes_nothing(
    store: TestableStore, expires_at: int
) -> None:
    store.add_refresh_token(refresh("t0", expires_at=expires_at))
    rotation = store.rotate_refresh_token("t0", refresh("t1"), NOW)
    assert rotation.status is RotationStatus.INVALID
    assert rotation.previous == refresh("t0", expires_at=expires_at)
    assert store.get_refresh_token("t0") == refresh("t0", expires_at=expires_at)
    assert store.get_refresh_token("t1") is None


def test_rotate_used_token_is_reuse_and_revokes_the_family(store: TestableStore) -> None:
    users(store)
    store.add_refresh_token(refresh("t0", access_expires_at=NOW + 5))
    store.rotate_refresh_token("t0", refresh("t1", access_expires_at=NOW + 300), NOW + 1)
    store.rotate_refresh_token("t1", refresh("t2", access_expires_at=NOW + 400), NOW + 2)
    store.add_refresh_token(refresh("other", family_id="family-2"))

    rotation = store.rotate_refresh_token("t0", refresh("t3"), NOW + 10)

    # One revocation for the family, whatever its length: it lasts as long as the
    # family's last access token.
    assert rotation.status is RotationStatus.REUSED
    assert rotation.previous is not None and rotation.previous.token_hash == "t0"
    assert [(r.kind, r.target, r.expires_at, r.revoked_at) for r in rotation.revocations] == [
        (RevocationKind.FAMILY, "family-1", NOW + 400, NOW + 10)
    ]
    assert store.active_revocations(NOW + 10) == list(rotation.revocations)
    for token_hash in ["t0", "t1", "t2"]:
        stored = store.get_refresh_token(token_hash)
        assert stored is not None and stored.revoked
    other = store.get_refresh_token("other")
    assert other is not None and not other.revoked
    assert store.get_refresh_token("t3") is None


def test_reuse_of_a_family_from_before_sid_revokes_its_access_tokens_one_by_one(
    store: TestableStore,
) -> None:
    # Tokens written before access tokens named their family keep their jti: those are
    # revoked one by one (expired ones too: a verifier's leeway may still accept them).
    users(store)
    store.add_refresh_token(refresh("t0", access_jti="at-t0", access_expires_at=NOW + 5))
    store.rotate_refresh_token("t0", refresh("t1", access_expires_at=NOW + 300), NOW + 1)

    rotation = store.rotate_refresh_token("t0", refresh("t2"), NOW + 10)

    assert [(r.kind, r.jti or r.target) for r in rotation.revocations][1:] == [
        (RevocationKind.TOKEN, "at-t0")
    ]
    assert rotation.revocations[0].kind is RevocationKind.FAMILY


def test_rotate_token_of_revoked_family_is_invalid(store: TestableStore) -> None:
    users(store)
    store.add_refresh_token(refresh("t0"))
    store.rotate_refresh_token("t0", refresh("t1"), NOW)
    assert store.rotate_refresh_token("t0", refresh("x"), NOW).status is RotationStatus.REUSED

    for token_hash in ["t0", "t1"]:
        rotation = store.rotate_refresh_token(token_hash, refresh("t2"), NOW)
        assert rotation.status is RotationStatus.INVALID
        assert rotation.previous is not None and rotation.previous.revoked
        assert rotation.revocations == ()
    assert store.get_refresh_token("t2") is None


def test_rotate_used_token_after_its_expiry_is_still_reuse(store: TestableStore) -> None:
    users(store)
    store.add_refresh_token(refresh("t0", expires_at=NOW + 10))
    store.rotate_refresh_token("t0", refresh("t1", expires_at=NOW + HOUR), NOW)
    rotation = store.rotate_refresh_token("t0", refresh("t2"), NOW + 20)
    assert rotation.status is RotationStatus.REUSED


def test_rotate_to_taken_successor_hash_changes_nothing(store: TestableStore) -> None:
    users(store)
    store.add_refresh_token(refresh("t0"))
    store.add_refresh_token(refresh("taken", family_id="family-2"))
    with pytest.raises(AlreadyExists):
        store.rotate_refresh_token("t0", refresh("taken"), NOW)
    assert store.get_refresh_token("t0") == refresh("t0")  # not marked used
    assert store.rotate_refresh_token("t0", refresh("t1"), NOW).status is RotationStatus.ROTATED


def test_concurrent_rotation_of_one_token_rotates_exactly_once(store: TestableStore) -> None:
    users(store)
    store.add_refresh_token(refresh("t0"))

    rotations = run_concurrently(
        lambda i: store.rotate_refresh_token("t0", refresh(f"t1-{i}"), NOW)
    )

    # One wins; the next presents a used token (reuse), which revokes the family; the rest
    # find a revoked family.
    statuses = Counter(r.status for r in rotations)
    assert statuses == {
        RotationStatus.ROTATED: 1,
        RotationStatus.REUSED: 1,
        RotationStatus.INVALID: THREADS - 2,
    }
    winner = next(i for i, r in enumerate(rotations) if r.status is RotationStatus.ROTATED)
    successors = [store.get_refresh_token(f"t1-{i}") for i in range(THREADS)]
    assert [i for i, s in enumerate(successors) if s is not None] == [winner]
    stored = successors[winner]
    assert stored is not None and stored.revoked
    assert [(r.kind, r.target) for r in store.active_revocations(NOW)] == [
        (RevocationKind.FAMILY, "family-1")
    ]


def test_reuse_racing_rotations_revokes_every_successor(store: TestableStore) -> None:
    # Half the threads replay the used t0 while the other half rotate the current t1: the
    # family revocation must also catch a successor inserted concurrently.
    users(store)
    for round_ in range(10):
        family = f"family-{round_}"
        store.add_refresh_token(refresh(f"{round_}-t0", family_id=family))
        store.rotate_refresh_token(f"{round_}-t0", refresh(f"{round_}-t1"), NOW)

        def present(i: int, round_: int = round_) -> RotationStatus:
            presented = f"{round_}-t0" if i % 2 else f"{round_}-t1"
            successor = refresh(f"{round_}-t2-{i}")
            return store.rotate_refresh_token(presented, successor, NOW).status

        statuses = Counter(run_concurrently(present))
        assert statuses[RotationStatus.REUSED] == 1
        assert statuses[RotationStatus.ROTATED] <= 1
        hashes = [f"{round_}-t0", f"{round_}-t1"] + [f"{round_}-t2-{i}" for i in range(THREADS)]
        stored = [t for t in map(store.get_refresh_token, hashes) if t is not None]
        assert len(stored) == 2 + statuses[RotationStatus.ROTATED]
        assert all(t.revoked for t in stored)


# -- refresh tokens: family revocation -------------------------------------------------------


def test_revoke_refresh_family_of_unknown_token_is_none(store: TestableStore) -> None:
    assert store.revoke_refresh_family("unknown", NOW) is None


def test_revoke_refresh_family_revokes_and_is_idempotent(store: TestableStore) -> None:
    users(store)
    store.add_refresh_token(refresh("t0", access_expires_at=NOW - 1))
    store.rotate_refresh_token("t0", refresh("t1", access_expires_at=NOW + 300), NOW - 100)

    written = store.revoke_refresh_family("t1", NOW)

    assert written is not None
    assert [(r.kind, r.target, r.expires_at) for r in written] == [
        (RevocationKind.FAMILY, "family-1", NOW + 300)
    ]
    assert store.revoke_refresh_family("t1", NOW) == ()
    assert store.revoke_refresh_family("t0", NOW) == ()
    assert store.revocations_after(0) == list(written)
    assert store.rotate_refresh_token("t1", refresh("t2"), NOW).status is RotationStatus.INVALID


def test_revoke_refresh_family_keeps_an_earlier_access_revocation(store: TestableStore) -> None:
    store.add_refresh_token(refresh("t0", access_jti="at-t0", access_expires_at=NOW + 300))
    earlier = store.revoke("at-t0", NOW + 300, NOW - 5)

    written = store.revoke_refresh_family("t0", NOW)

    assert written is not None and [r.kind for r in written] == [RevocationKind.FAMILY]
    assert store.revocations_after(0) == [earlier, *written]


# -- revocations -----------------------------------------------------------------------------


def test_revoke_records_the_revocation(store: TestableStore) -> None:
    revocation = store.revoke("jti-1", NOW + 300, NOW)
    assert (revocation.jti, revocation.expires_at, revocation.revoked_at) == (
        "jti-1",
        NOW + 300,
        NOW,
    )
    assert revocation.sequence > 0
    assert store.revocations_after(0) == [revocation]


def test_revoke_is_idempotent(store: TestableStore) -> None:
    first = store.revoke("jti-1", NOW + 300, NOW)
    assert store.revoke("jti-1", NOW + 999, NOW + 5) == first
    assert store.revocations_after(0) == [first]


def test_concurrent_revoke_of_one_jti_writes_one_row(store: TestableStore) -> None:
    revocations = run_concurrently(lambda i: store.revoke("jti-1", NOW + 300, NOW + i))
    assert len(set(revocations)) == 1
    assert store.revocations_after(0) == [revocations[0]]


def test_concurrent_revocations_get_distinct_ascending_sequences(store: TestableStore) -> None:
    revocations = run_concurrently(lambda i: store.revoke(f"jti-{i}", NOW + 300, NOW))
    sequences = [r.sequence for r in revocations]
    assert len(set(sequences)) == THREADS
    assert store.revocations_after(0) == sorted(revocations, key=lambda r: r.sequence)


def test_revocations_after_is_ascending_and_limited(store: TestableStore) -> None:
    log = [store.revoke(f"jti-{i}", NOW + 300, NOW) for i in range(5)]
    assert [r.sequence for r in log] == sorted(r.sequence for r in log)
    assert store.revocations_after(0) == log
    assert store.revocations_after(0, limit=2) == log[:2]
    assert store.revocations_after(log[1].sequence, limit=2) == log[2:4]
    assert store.revocations_after(log[-1].sequence) == []


@pytest.mark.parametrize("limit", [0, -1])
def test_revocations_after_rejects_a_limit_below_one(store: TestableStore, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        store.revocations_after(0, limit=limit)


def test_active_revocations_are_those_not_yet_expired(store: TestableStore) -> None:
    store.revoke("expired", NOW - 1, NOW - 100)
    store.revoke("expires-now", NOW, NOW - 100)
    later = store.revoke("later", NOW + 60, NOW - 100)
    sooner = store.revoke("sooner", NOW + 1, NOW - 50)
    assert store.active_revocations(NOW) == [later, sooner]  # by sequence, not expiry


def test_sequences_are_not_reused_after_prune(store: TestableStore) -> None:
    store.revoke("a", NOW + 1, NOW)
    last = store.revoke("b", NOW + 1, NOW)
    assert store.prune(NOW + 10) == 2
    assert store.revoke("c", NOW + 100, NOW + 10).sequence > last.sequence


# -- housekeeping ----------------------------------------------------------------------------


def test_prune_removes_only_what_expired_before_now(store: TestableStore) -> None:
    store.revoke("old", NOW - 1, NOW - 100)
    boundary = store.revoke("boundary", NOW, NOW - 100)
    current = store.revoke("current", NOW + 60, NOW - 100)
    store.add_refresh_token(
        refresh("old", family_id="f1", expires_at=NOW - 1, access_expires_at=NOW - 2)
    )
    store.add_refresh_token(refresh("at-boundary", family_id="f2", expires_at=NOW))
    # Expired itself, but its access token is still valid: kept for family revocation.
    store.add_refresh_token(
        refresh("access-live", family_id="f3", expires_at=NOW - 1, access_expires_at=NOW + 60)
    )

    assert store.prune(NOW) == 3  # a revocation, a refresh token and its family

    assert store.revocations_after(0) == [boundary, current]
    assert store.get_refresh_token("old") is None
    assert store.get_refresh_token("at-boundary") is not None
    assert store.get_refresh_token("access-live") is not None
    assert store.prune(NOW) == 0


def test_ping_answers(store: TestableStore) -> None:
    store.ping()


# -- lifecycle ---------------------------------------------------------------------------------


def test_data_survives_close_and_reopen(open_: OpenStore) -> None:
    first = open_()
    first.add_account(principal("alice"))
    first.add_key(key("k1"))
    first.get_or_create_setting("issuer", "https://tokens")
    first.add_refresh_token(refresh("t0"))
    revocation = first.revoke("jti-1", NOW + 300, NOW)
    first.close()

    second = open_()
    assert second.get_account("alice", CLIENT) == principal("alice")
    assert second.list_keys() == [key("k1")]
    assert second.get_or_create_setting("issuer", "other") == "https://tokens"
    assert second.get_refresh_token("t0") == refresh("t0")
    assert second.revocations_after(0) == [revocation]


def test_reopening_applies_no_migration_twice(open_: OpenStore, raw_engine: Engine) -> None:
    open_().close()
    open_().close()
    with raw_engine.connect() as conn:
        versions = conn.execute(select(schema_migrations.c.version)).scalars().all()
    assert versions == list(range(1, LATEST_VERSION + 1))


def test_concurrent_first_opens_migrate_once(open_: OpenStore, raw_engine: Engine) -> None:
    stores = run_concurrently(lambda i: open_())
    stores[0].add_account(principal("alice"))
    assert all(s.get_account("alice", CLIENT) is not None for s in stores)
    with raw_engine.connect() as conn:
        versions = conn.execute(select(schema_migrations.c.version)).scalars().all()
    assert versions == list(range(1, LATEST_VERSION + 1))


def test_newer_schema_version_is_refused(open_: OpenStore, raw_engine: Engine) -> None:
    open_().close()
    with raw_engine.begin() as conn:
        conn.execute(
            insert(schema_migrations).values(version=LATEST_VERSION + 1, description="future")
        )
    with pytest.raises(StoreError, match="newer") as caught:
        open_()
    assert type(caught.value) is StoreError


# -- SQLite specifics --------------------------------------------------------------------------


def test_sqlite_url_creates_a_private_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    url = sqlite_url(data_dir)
    assert url == f"sqlite:///{data_dir.resolve()}/bearer-grpc.db"
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def test_sqlite_files_are_private(tmp_path: Path) -> None:
    store = open_store(sqlite_url(tmp_path))
    try:
        store.add_key(key("k1"))  # the WAL and shared-memory files exist while open
        files = sorted(tmp_path.glob("bearer-grpc.db*"))
        assert [f.name for f in files] == [
            "bearer-grpc.db",
            "bearer-grpc.db-shm",
            "bearer-grpc.db-wal",
        ]
        assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {
            f.name: 0o600 for f in files
        }
    finally:
        store.close()


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    open_store(sqlite_url(tmp_path)).close()
    with sqlite3.connect(tmp_path / "bearer-grpc.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_sqlite_locked_database_is_unavailable_and_nothing_is_written(tmp_path: Path) -> None:
    store = open_store(sqlite_url(tmp_path), busy_timeout_s=0.05)
    locker = sqlite3.connect(tmp_path / "bearer-grpc.db", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailable, match="locked"):
            store.add_account(principal("alice"))
        with pytest.raises(StoreUnavailable, match="locked"):
            store.revoke("jti-1", NOW + 300, NOW)
        assert store.get_account("alice", CLIENT) is None  # WAL: reads go on
        locker.rollback()
        assert store.get_account("alice", CLIENT) is None
        assert store.revocations_after(0) == []
        store.add_account(principal("alice"))
        assert store.get_account("alice", CLIENT) == principal("alice")
    finally:
        locker.close()
        store.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_sqlite_in_memory_is_refused(url: str) -> None:
    with pytest.raises(StoreError, match="in-memory"):
        open_store(url)


def test_sqlite_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot inspect"):
        open_store(f"sqlite:///{tmp_path}/missing/bearer-grpc.db")


# -- URLs and PostgreSQL specifics -----------------------------------------------------------


@pytest.mark.parametrize("url", ["mysql://root:pw@db/tokens", "redis://localhost"])
def test_unsupported_url_scheme_is_refused(url: str) -> None:
    with pytest.raises(StoreError, match="unsupported store URL scheme"):
        open_store(url)


@pytest.mark.parametrize(
    ("url", "postgres"),
    [
        ("postgresql://tokens@db/tokens", True),
        ("postgres://tokens@db/tokens", True),
        ("postgresql+psycopg://tokens@db/tokens", True),
        ("postgresql+asyncpg://tokens@db/tokens", False),  # refused by open_store
        ("sqlite:///data/bearer-grpc.db", False),
        ("mysql://root:pw@db/tokens", False),
        ("not a url", False),
    ],
)
def test_is_postgres_url_reads_the_schemes_open_store_reads(url: str, postgres: bool) -> None:
    assert is_postgres_url(url) is postgres


def test_invalid_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(StoreError, match="invalid store URL") as caught:
        open_store("not a url, password=hunter2")
    assert "hunter2" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_postgres_without_psycopg_asks_for_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://tokens@127.0.0.1/tokens")
    assert str(caught.value) == (
        "PostgreSQL support needs the 'postgres' extra: pip install 'bearer-grpc[postgres]'"
    )


def test_postgres_unreachable_is_unavailable_without_the_password() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(StoreUnavailable, match="cannot connect") as caught:
        open_store("postgresql://tokens:hunter2-secret@127.0.0.1:1/tokens")
    error: BaseException | None = caught.value
    while error is not None:  # the whole chain, as a traceback would show it
        assert "hunter2-secret" not in str(error)
        assert "hunter2-secret" not in repr(error)
        error = error.__cause__ or error.__context__


@pytest.mark.postgres
def test_postgres_repr_hides_the_password(pg_url: str) -> None:
    url = make_url(pg_url).set(password="hunter2-secret")
    store = open_store(url.render_as_string(hide_password=False))
    try:
        assert "hunter2-secret" not in repr(store)
        assert "postgresql" in repr(store)
    finally:
        store.close()


def test_records_hide_secrets_in_repr() -> None:
    assert "hash-of-alice" not in repr(principal("alice"))
    assert "PRIVATE" not in repr(key("k1"))
    assert "secret-hash" not in repr(refresh("secret-hash", access_jti="at-1"))
    assert "jti-1" in repr(Revocation(1, "jti-1", NOW, NOW))
