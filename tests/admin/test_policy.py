"""Who may call the AdminService: the refusals of bearer_grpc's own interceptor, with
nothing changed, and the TokenService left to its own rules."""

from __future__ import annotations

import grpc
import pytest

from bearer_grpc.store import AccountKind
from bearer_grpc.testing import reason_of
from bearer_grpc.v1 import admin_service_pb2 as apb
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.admin.conftest import ADMIN, KEYS, SECRETS, AdminCaller, AdminEnv
from tests.harness import refusal

CREATE = apb.CreateClientRequest(name="intruder", audiences=["orders"])


def _unchanged(env: AdminEnv, events_before: int) -> None:
    assert env.service.store.get_account("intruder", AccountKind.CLIENT) is None
    assert len(env.service.store.audit_events(limit=1000)) == events_before


def _events(env: AdminEnv) -> int:
    return len(env.service.store.audit_events(limit=1000))


def test_no_token_is_unauthenticated(env: AdminEnv) -> None:
    before = _events(env)
    error = refusal(lambda: env.stub().CreateClient(CREATE, timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason_of(error) == "TOKEN_MISSING"
    _unchanged(env, before)


def test_a_token_without_the_admin_scope_is_permission_denied(env: AdminEnv) -> None:
    caller = env.caller(scopes=("orders.read",))
    before = _events(env)
    for call in (
        lambda: caller.stub.CreateClient(CREATE, timeout=10),
        lambda: caller.stub.ListClients(apb.ListClientsRequest(), timeout=10),
        lambda: caller.stub.RevokeSubject(apb.RevokeSubjectRequest(name="root"), timeout=10),
    ):
        error = refusal(call)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert reason_of(error) == "INSUFFICIENT_SCOPE"
    _unchanged(env, before)
    assert env.service.store.recent_revocations() == []


def test_an_admin_token_for_another_audience_is_unauthenticated(env: AdminEnv) -> None:
    caller = env.caller(audiences=("orders",))
    before = _events(env)
    error = refusal(lambda: caller.stub.CreateClient(CREATE, timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason_of(error) == "TOKEN_INVALID"
    _unchanged(env, before)


def test_an_expired_admin_token_is_unauthenticated(env: AdminEnv, admin: AdminCaller) -> None:
    admin.stub.ListClients(apb.ListClientsRequest(), timeout=10)  # valid now
    env.clock.now += 900 + 31  # past exp and the leeway
    before = _events(env)
    error = refusal(lambda: admin.stub.CreateClient(CREATE, timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason_of(error) == "TOKEN_EXPIRED"
    _unchanged(env, before)


def test_a_revoked_admin_token_is_unauthenticated(env: AdminEnv, admin: AdminCaller) -> None:
    admin.stub.RevokeSubject(apb.RevokeSubjectRequest(name="root"), timeout=10)
    error = refusal(lambda: admin.stub.ListClients(apb.ListClientsRequest(), timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason_of(error) == "TOKEN_REVOKED"


@pytest.mark.parametrize(
    ("method", "request_", "needed"),
    [
        ("CreateClient", CREATE, SECRETS),
        (
            "UpdateClient",
            apb.UpdateClientRequest(name="root", scopes=[ADMIN, SECRETS], audiences=["o"]),
            SECRETS,
        ),
        ("RotateClientSecret", apb.RotateClientSecretRequest(name="root"), SECRETS),
        (
            "CreateUser",
            apb.CreateUserRequest(name="intruder", password="x" * 20, audiences=["o"]),
            SECRETS,
        ),
        ("SetUserPassword", apb.SetUserPasswordRequest(name="root", password="x" * 20), SECRETS),
        ("RotateKey", apb.RotateKeyRequest(delay_seconds=100), KEYS),
        ("WithdrawKey", apb.WithdrawKeyRequest(kid="any"), KEYS),
    ],
)
def test_dangerous_methods_need_their_narrower_scope(
    env: AdminEnv, method: str, request_: object, needed: str
) -> None:
    others = {SECRETS, KEYS} - {needed}
    caller = env.caller(scopes=(ADMIN, *others))
    keys_before = [k.kid for k in env.service.store.list_keys()]
    before = _events(env)
    error = refusal(lambda: getattr(caller.stub, method)(request_, timeout=10))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(error) == "INSUFFICIENT_SCOPE"
    assert [k.kid for k in env.service.store.list_keys()] == keys_before
    _unchanged(env, before)


def test_the_admin_scope_alone_reads(env: AdminEnv) -> None:
    caller = env.caller(scopes=(ADMIN,))
    assert [c.name for c in caller.stub.ListClients(apb.ListClientsRequest()).clients]
    assert caller.stub.ListKeys(apb.ListKeysRequest()).keys
    assert caller.stub.ListAuditEvents(apb.ListAuditEventsRequest()).events


def test_the_admin_scope_alone_cannot_grant_itself_the_narrower_ones(env: AdminEnv) -> None:
    """A plain admin that could change its own scopes would hold every admin scope next."""
    caller = env.caller(scopes=(ADMIN,))
    name = caller.client.client_id
    escalate = apb.UpdateClientRequest(name=name, scopes=[ADMIN, SECRETS, KEYS], audiences=["x"])
    error = refusal(lambda: caller.stub.UpdateClient(escalate, timeout=10))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    account = env.service.store.get_account(name, AccountKind.CLIENT)
    assert account is not None and tuple(account.scopes) == (ADMIN,)


def test_the_token_service_stays_public_to_the_interceptor(env: AdminEnv) -> None:
    client = env.service.add_client()
    stub = env.service.stub()
    token = env.service.issue(client).access_token  # IssueToken with no bearer token
    answer = stub.VerifyToken(pb.VerifyTokenRequest(token=token, audience="orders"), timeout=10)
    assert answer.active
    assert stub.GetJwks(pb.GetJwksRequest(), timeout=10).jwks_json
    # a bearer token for another audience does not stop a TokenService call either
    metadata = (("authorization", f"Bearer {token}"),)
    assert stub.GetJwks(pb.GetJwksRequest(), timeout=10, metadata=metadata).issuer
    stub.RevokeToken(pb.RevokeTokenRequest(token=token), timeout=10)
