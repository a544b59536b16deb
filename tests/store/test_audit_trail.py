"""The store's side of the audit trail and the admin API, on every backend: an event is
written with its change and only then, account updates and credentials (a rotated
secret kept until its deadline), newest-first reads, and pruning by age."""

from __future__ import annotations

from dataclasses import replace

from bearer_grpc.core.verification import RevocationKind
from bearer_grpc.store import (
    Account,
    AccountKind,
    AuditEvent,
    KeyRecord,
    RefreshToken,
    TestableStore,
)

NOW = 1_800_000_000


def _event(action: str, target: str = "t", at: int = NOW) -> AuditEvent:
    return AuditEvent("tester", action, target, at, {"n": 1})


def _client(name: str = "svc") -> Account:
    return Account(
        name=name,
        kind=AccountKind.CLIENT,
        credential_hash="hmac-sha256$" + "1" * 64,
        scopes=("a",),
        audiences=("orders",),
        created_at=NOW,
    )


def _actions(store: TestableStore) -> list[str]:
    return [e.action for e in store.audit_events(limit=1000)]


def test_changes_write_their_event_and_only_when_they_change_something(
    store: TestableStore,
) -> None:
    store.add_account(_client(), audit=_event("add"))
    assert (
        store.update_account(
            "nobody", AccountKind.CLIENT, scopes=(), audiences=("o",), audit=_event("no")
        )
        is None
    )
    assert store.set_credential("nobody", AccountKind.CLIENT, "h", audit=_event("no")) is None
    assert (
        store.remove_account(
            "nobody", AccountKind.CLIENT, clock=lambda: NOW, retention=60, audit=_event("no")
        )
        is None
    )
    first = store.revoke("jti-1", NOW + 60, NOW, audit=_event("revoke"))
    again = store.revoke("jti-1", NOW + 60, NOW + 1, audit=_event("no"))
    assert again == first
    assert store.add_key_if(lambda keys: None, audit=_event("no")) is None
    assert store.remove_key_if("none", lambda record: True, audit=_event("no")) is None
    store.revoke_subject("svc", clock=lambda: NOW, retention=60, audit=_event("subject"))
    assert _actions(store) == ["subject", "revoke", "add"]


def test_events_read_newest_first_in_pages(store: TestableStore) -> None:
    for n in range(5):
        store.revoke(f"jti-{n}", NOW + 60, NOW, audit=_event("revoke", f"jti-{n}"))
    first = store.audit_events(limit=2)
    assert [e.target for e in first] == ["jti-4", "jti-3"]
    rest = store.audit_events(before=first[-1].sequence, limit=10)
    assert [e.target for e in rest] == ["jti-2", "jti-1", "jti-0"]
    assert rest[0].detail == {"n": 1} and rest[0].actor == "tester"
    recent = store.recent_revocations(limit=2)
    assert [r.jti for r in recent] == ["jti-4", "jti-3"]
    assert [r.jti for r in store.recent_revocations(before=recent[-1].sequence)] == [
        "jti-2",
        "jti-1",
        "jti-0",
    ]


def test_update_account_replaces_scopes_and_audiences(store: TestableStore) -> None:
    store.add_account(_client())
    changed = store.update_account("svc", AccountKind.CLIENT, scopes=("b", "c"), audiences=("x",))
    assert changed is not None and (changed.scopes, changed.audiences) == (("b", "c"), ("x",))
    assert store.update_account("svc", AccountKind.USER, scopes=(), audiences=("x",)) is None


def test_set_credential_keeps_the_previous_one_until_its_deadline_or_drops_it(
    store: TestableStore,
) -> None:
    store.add_account(_client())
    kept = store.set_credential("svc", AccountKind.CLIENT, "new", previous_valid_until=NOW + 60)
    assert kept is not None
    assert (kept.credential_hash, kept.previous_credential_hash) == (
        "new",
        "hmac-sha256$" + "1" * 64,
    )
    assert kept.previous_valid_until == NOW + 60
    dropped = store.set_credential("svc", AccountKind.CLIENT, "newer")
    assert dropped is not None
    assert (dropped.previous_credential_hash, dropped.previous_valid_until) == ("", 0)


def test_a_family_revoked_by_token_names_the_family_in_its_event(store: TestableStore) -> None:
    token = RefreshToken(
        token_hash="h1",
        family_id="fam-1",
        subject="alice",
        client_id="bearer-grpc",
        scopes=("a",),
        audience="orders",
        issued_at=NOW,
        expires_at=NOW + 3600,
        access_jti="",
        access_expires_at=NOW + 300,
    )
    store.add_refresh_token(token)
    written = store.revoke_refresh_family("h1", NOW, audit=_event("family.revoke", ""))
    assert written and written[0].kind is RevocationKind.FAMILY
    assert store.revoke_refresh_family("h1", NOW, audit=_event("no")) == ()
    [event] = store.audit_events()
    assert (event.action, event.target) == ("family.revoke", "fam-1")


def test_key_changes_write_their_events(store: TestableStore) -> None:
    key = KeyRecord("kid-1", "ES256", "{}", b"pem", NOW, NOW + 3600)
    store.add_key_if(lambda keys: key, audit=_event("key.rotate", "kid-1"))
    store.remove_key_if("kid-1", lambda record: True, audit=_event("key.withdraw", "kid-1"))
    assert _actions(store) == ["key.withdraw", "key.rotate"]


def test_prune_removes_events_older_than_the_horizon_only(store: TestableStore) -> None:
    store.add_account(_client("old"), audit=_event("add", "old", at=NOW - 100))
    store.add_account(replace(_client("new")), audit=_event("add", "new", at=NOW))
    assert store.prune(NOW) == 0  # no horizon: events stay
    assert store.prune(NOW, audit_horizon=NOW - 50) == 1
    assert [e.target for e in store.audit_events()] == ["new"]
