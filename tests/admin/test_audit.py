"""The audit trail: an event per change and per revocation, written in the change's own
transaction, with its actor; never a secret, in the trail or in its log line; pruned
after the retention."""

from __future__ import annotations

import json
import logging
import time

import pytest

from bearer_grpc.service.admin import Admin
from bearer_grpc.service.log_format import JsonFormatter
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import Account, AccountKind, AuditEvent
from bearer_grpc.testing import FrozenClock
from bearer_grpc.v1 import admin_service_pb2 as apb
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.admin.conftest import AdminCaller, AdminEnv
from tests.harness import refusal, running_service

PASSWORD = "a long and unusual passphrase 7"


def _trail(env: AdminEnv) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.target) for e in env.service.store.audit_events(limit=100)]


def test_a_failing_change_writes_no_event(env: AdminEnv, admin: AdminCaller) -> None:
    admin.stub.CreateClient(apb.CreateClientRequest(name="svc", audiences=["orders"]))
    before = _trail(env)
    for call in (
        lambda: admin.stub.CreateClient(apb.CreateClientRequest(name="svc", audiences=["x"])),
        lambda: admin.stub.UpdateClient(apb.UpdateClientRequest(name="nobody", audiences=["x"])),
        lambda: admin.stub.RotateClientSecret(apb.RotateClientSecretRequest(name="nobody")),
        lambda: admin.stub.WithdrawKey(apb.WithdrawKeyRequest(kid="nope")),
    ):
        refusal(call)
    admin.stub.DeleteClient(apb.DeleteClientRequest(name="nobody"))  # OK, nothing to delete
    assert _trail(env) == before


def test_an_event_that_cannot_be_written_undoes_its_change(env: AdminEnv) -> None:
    store = env.service.store
    account = Account(
        name="half",
        kind=AccountKind.CLIENT,
        credential_hash="hmac-sha256$" + "0" * 64,
        scopes=(),
        audiences=("orders",),
        created_at=int(time.time()),
    )
    unwritable = AuditEvent("t", "client.create", "half", 0, detail={"x": object()})
    with pytest.raises(TypeError):
        store.add_account(account, audit=unwritable)
    assert store.get_account("half", AccountKind.CLIENT) is None
    with pytest.raises(TypeError):
        store.revoke_subject("alice", clock=lambda: 1, retention=10, audit=unwritable)
    assert store.recent_revocations() == []


def test_every_revocation_is_an_event_with_its_actor(env: AdminEnv, admin: AdminCaller) -> None:
    client = env.service.add_client("svc")
    stub = env.service.stub()
    by_value = env.service.issue(client).access_token
    stub.RevokeToken(pb.RevokeTokenRequest(token=by_value), timeout=10)
    own = env.service.issue(client).access_token
    own_id = stub.VerifyToken(pb.VerifyTokenRequest(token=own, audience="orders")).token_id
    stub.RevokeToken(
        pb.RevokeTokenRequest(token_id=own_id),
        metadata=(("authorization", f"Bearer {own}"),),
        timeout=10,
    )
    over_http = env.service.issue(client).access_token
    env.service.authority.revoke_token(over_http, client_id="svc")  # as the HTTP face does
    admin.stub.RevokeSubject(apb.RevokeSubjectRequest(name="svc"))
    trail = _trail(env)[:4]
    assert [(actor, action) for actor, action, _ in trail] == [
        ("root", "subject.revoke"),
        ("svc", "token.revoke"),
        ("svc", "token.revoke"),
        ("token holder", "token.revoke"),
    ]
    assert trail[0][2] == "svc" and trail[2][2] == own_id


def test_no_secret_in_events_or_their_log_lines(
    env: AdminEnv, admin: AdminCaller, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bearer_grpc.audit")
    created = admin.stub.CreateClient(apb.CreateClientRequest(name="svc", audiences=["orders"]))
    rotated = admin.stub.RotateClientSecret(
        apb.RotateClientSecretRequest(name="svc", old_secret_valid_seconds=60)
    )
    admin.stub.CreateUser(
        apb.CreateUserRequest(name="alice", password=PASSWORD, audiences=["orders"])
    )
    admin.stub.SetUserPassword(apb.SetUserPasswordRequest(name="alice", password=PASSWORD + "!"))
    secrets = [created.client_secret, rotated.client_secret, PASSWORD, admin.token]
    stored = env.service.store.get_account("svc", AccountKind.CLIENT)
    assert stored is not None
    secrets += [stored.credential_hash, stored.previous_credential_hash]

    events = admin.stub.ListAuditEvents(apb.ListAuditEventsRequest()).events
    actions = [e.action for e in events]
    assert actions[:4] == [
        "user.set_password",
        "user.create",
        "client.rotate_secret",
        "client.create",
    ]
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "bearer_grpc.audit"]
    assert len(lines) == 4
    assert json.loads(lines[1])["action"] == "client.rotate_secret"
    assert json.loads(lines[1])["actor"] == "root"
    text = str(events) + "\n".join(lines)
    for secret in secrets:
        assert secret not in text


def test_events_older_than_the_retention_are_pruned(store_url: str) -> None:
    clock = FrozenClock(float(int(time.time())))
    settings = ServiceSettings(audit_retention=3600)
    with running_service(store_url, settings=settings, clock=clock) as service:
        admin = Admin(service.store, clock=clock)
        admin.add_client("early", scopes=(), audiences=["orders"])
        clock.now += 1800
        admin.add_client("later", scopes=(), audiences=["orders"])
        clock.now += 1801  # "early" is now older than the retention, "later" is not
        service.authority.housekeeping()
        kept = [e.target for e in service.store.audit_events()]
    assert kept == ["later"]


def test_a_retention_of_zero_keeps_every_event(store_url: str) -> None:
    clock = FrozenClock(float(int(time.time())))
    settings = ServiceSettings(audit_retention=0)
    with running_service(store_url, settings=settings, clock=clock) as service:
        [first_key] = service.store.list_keys()
        Admin(service.store, clock=clock).add_client("early", scopes=(), audiences=["orders"])
        clock.now += 20 * 365 * 86400
        service.authority.housekeeping()
        assert [e.target for e in service.store.audit_events()] == ["early", first_key.kid]


def test_audit_retention_is_bounded() -> None:
    with pytest.raises(ValueError, match="audit retention"):
        ServiceSettings(audit_retention=-1)


def test_refresh_token_reuse_writes_the_family_revocation(
    env: AdminEnv, admin: AdminCaller
) -> None:
    admin.stub.CreateUser(
        apb.CreateUserRequest(name="alice", password=PASSWORD, audiences=["orders"])
    )
    stub = env.service.stub()
    login = stub.IssueToken(
        pb.IssueTokenRequest(password=pb.PasswordGrant(username="alice", password=PASSWORD)),
        timeout=10,
    )
    refresh = pb.IssueTokenRequest(
        refresh_token=pb.RefreshTokenGrant(refresh_token=login.refresh_token)
    )
    stub.IssueToken(refresh, timeout=10)
    assert refusal(lambda: stub.IssueToken(refresh, timeout=10))  # reuse
    [event] = [e for e in env.service.store.audit_events() if e.action == "family.revoke"]
    assert (event.actor, dict(event.detail)) == ("token service", {"reason": "refresh token reuse"})
    [family] = [r for r in env.service.store.recent_revocations() if r.kind.value == "family"]
    assert event.target == family.target
