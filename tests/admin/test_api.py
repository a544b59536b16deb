"""Every AdminService RPC against a real server on each store: what it answers, what it
changed, and the statuses of missing, taken and malformed names."""

from __future__ import annotations

import json

import grpc
import pytest

from bearer_grpc.store import AccountKind
from bearer_grpc.v1 import admin_service_pb2 as apb
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.admin.conftest import AdminCaller, AdminEnv
from tests.harness import refusal

PASSWORD = "a long and unusual passphrase 7"


def _issue(env: AdminEnv, client_id: str, secret: str) -> pb.IssueTokenResponse:
    request = pb.IssueTokenRequest(
        client_credentials=pb.ClientCredentialsGrant(client_id=client_id, client_secret=secret)
    )
    response: pb.IssueTokenResponse = env.service.stub().IssueToken(request, timeout=10)
    return response


def test_create_client_returns_its_secret_once_and_it_works(
    env: AdminEnv, admin: AdminCaller
) -> None:
    created = admin.stub.CreateClient(
        apb.CreateClientRequest(name="orders-api", scopes=["orders.read"], audiences=["orders"])
    )
    assert created.client.name == "orders-api"
    assert list(created.client.scopes) == ["orders.read"]
    assert list(created.client.audiences) == ["orders"]
    assert len(created.client_secret) >= 43
    assert _issue(env, "orders-api", created.client_secret).access_token
    got = admin.stub.GetClient(apb.GetClientRequest(name="orders-api"))
    assert got.client == created.client  # the secret is nowhere but in CreateClient's answer
    assert created.client_secret not in str(got)


def test_create_client_with_a_taken_name_is_already_exists(admin: AdminCaller) -> None:
    admin.stub.CreateClient(apb.CreateClientRequest(name="dup", audiences=["orders"]))
    error = refusal(
        lambda: admin.stub.CreateClient(apb.CreateClientRequest(name="dup", audiences=["x"]))
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    "request_",
    [
        apb.CreateClientRequest(name="", audiences=["orders"]),
        apb.CreateClientRequest(name="no-audience"),
        apb.CreateClientRequest(name="bad scope", audiences=["orders"]),
        apb.CreateClientRequest(name="x", scopes=["has space"], audiences=["orders"]),
        apb.CreateClientRequest(name="bearer-grpc", audiences=["orders"]),
    ],
    ids=["empty-name", "no-audience", "bad-name", "bad-scope", "reserved-name"],
)
def test_create_client_with_bad_input_is_invalid_argument(
    admin: AdminCaller, request_: apb.CreateClientRequest
) -> None:
    error = refusal(lambda: admin.stub.CreateClient(request_))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_list_clients_pages_through_every_client_by_name(admin: AdminCaller) -> None:
    for name in ("c-3", "c-1", "c-2", "c-5", "c-4"):
        admin.stub.CreateClient(apb.CreateClientRequest(name=name, audiences=["orders"]))
    names: list[str] = []
    token = ""
    pages = 0
    while True:
        page = admin.stub.ListClients(apb.ListClientsRequest(page_size=2, page_token=token))
        assert len(page.clients) <= 2
        names += [c.name for c in page.clients]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert names == ["c-1", "c-2", "c-3", "c-4", "c-5", "root"]
    assert pages == 3


def test_get_a_missing_client_is_not_found(admin: AdminCaller) -> None:
    error = refusal(lambda: admin.stub.GetClient(apb.GetClientRequest(name="nobody")))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_update_client_replaces_scopes_and_audiences(env: AdminEnv, admin: AdminCaller) -> None:
    created = admin.stub.CreateClient(
        apb.CreateClientRequest(name="svc", scopes=["a"], audiences=["orders"])
    )
    updated = admin.stub.UpdateClient(
        apb.UpdateClientRequest(name="svc", scopes=["b", "c"], audiences=["billing", "orders"])
    )
    assert list(updated.client.scopes) == ["b", "c"]
    assert list(updated.client.audiences) == ["billing", "orders"]
    issued = _issue(env, "svc", created.client_secret)
    assert sorted(issued.scopes) == ["b", "c"]


def test_update_a_missing_client_is_not_found_and_without_audience_invalid(
    admin: AdminCaller,
) -> None:
    missing = refusal(
        lambda: admin.stub.UpdateClient(apb.UpdateClientRequest(name="nobody", audiences=["x"]))
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    admin.stub.CreateClient(apb.CreateClientRequest(name="svc", audiences=["orders"]))
    empty = refusal(lambda: admin.stub.UpdateClient(apb.UpdateClientRequest(name="svc")))
    assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_more_audiences_than_the_bound_are_invalid_and_change_nothing(
    env: AdminEnv, admin: AdminCaller
) -> None:
    admin.stub.CreateClient(apb.CreateClientRequest(name="svc", audiences=["orders"]))
    many = [f"aud-{i}" for i in range(65)]
    error = refusal(
        lambda: admin.stub.UpdateClient(apb.UpdateClientRequest(name="svc", audiences=many))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    account = env.service.store.get_account("svc", AccountKind.CLIENT)
    assert account is not None and list(account.audiences) == ["orders"]
    created = refusal(
        lambda: admin.stub.CreateClient(apb.CreateClientRequest(name="wide", audiences=many))
    )
    assert created.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_rotate_secret_of_a_missing_client_is_not_found(admin: AdminCaller) -> None:
    error = refusal(
        lambda: admin.stub.RotateClientSecret(apb.RotateClientSecretRequest(name="nobody"))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_rotate_secret_with_an_overlap_too_long_is_invalid(admin: AdminCaller) -> None:
    admin.stub.CreateClient(apb.CreateClientRequest(name="svc", audiences=["orders"]))
    for seconds in (-1, 31 * 86400):
        error = refusal(
            lambda seconds=seconds: admin.stub.RotateClientSecret(  # type: ignore[misc]
                apb.RotateClientSecretRequest(name="svc", old_secret_valid_seconds=seconds)
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_delete_client_revokes_its_tokens_and_twice_is_ok(
    env: AdminEnv, admin: AdminCaller
) -> None:
    created = admin.stub.CreateClient(apb.CreateClientRequest(name="svc", audiences=["orders"]))
    token = _issue(env, "svc", created.client_secret).access_token
    assert admin.stub.DeleteClient(apb.DeleteClientRequest(name="svc")).deleted
    answer = env.service.stub().VerifyToken(
        pb.VerifyTokenRequest(token=token, audience="orders"), timeout=10
    )
    assert answer.reason == "TOKEN_REVOKED"
    again = admin.stub.DeleteClient(apb.DeleteClientRequest(name="svc"))
    assert not again.deleted
    assert env.service.store.get_account("svc", AccountKind.CLIENT) is None


def test_users_create_list_set_password_delete(env: AdminEnv, admin: AdminCaller) -> None:
    created = admin.stub.CreateUser(
        apb.CreateUserRequest(
            name="alice", password=PASSWORD, scopes=["orders.read"], audiences=["orders"]
        )
    )
    assert created.user.name == "alice"
    assert PASSWORD not in str(created)
    listed = admin.stub.ListUsers(apb.ListUsersRequest())
    assert [u.name for u in listed.users] == ["alice"]
    assert not listed.next_page_token

    admin.stub.SetUserPassword(
        apb.SetUserPasswordRequest(name="alice", password=PASSWORD + " changed")
    )
    stub = env.service.stub()
    login = pb.IssueTokenRequest(
        password=pb.PasswordGrant(username="alice", password=PASSWORD + " changed")
    )
    assert stub.IssueToken(login, timeout=10).access_token
    old = pb.IssueTokenRequest(password=pb.PasswordGrant(username="alice", password=PASSWORD))
    assert refusal(lambda: stub.IssueToken(old, timeout=10)).code() == (
        grpc.StatusCode.UNAUTHENTICATED
    )

    assert admin.stub.DeleteUser(apb.DeleteUserRequest(name="alice")).deleted
    assert not admin.stub.DeleteUser(apb.DeleteUserRequest(name="alice")).deleted
    assert list(admin.stub.ListUsers(apb.ListUsersRequest()).users) == []


def test_user_errors(admin: AdminCaller) -> None:
    weak = refusal(
        lambda: admin.stub.CreateUser(
            apb.CreateUserRequest(name="bob", password="short", audiences=["orders"])
        )
    )
    assert weak.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "short" not in (weak.details() or "")
    missing = refusal(
        lambda: admin.stub.SetUserPassword(
            apb.SetUserPasswordRequest(name="nobody", password=PASSWORD)
        )
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    taken = refusal(
        lambda: admin.stub.CreateUser(
            apb.CreateUserRequest(name="root", password=PASSWORD, audiences=["orders"])
        )
    )
    assert taken.code() == grpc.StatusCode.ALREADY_EXISTS


def test_keys_list_rotate_and_withdraw(env: AdminEnv, admin: AdminCaller) -> None:
    [signing] = admin.stub.ListKeys(apb.ListKeysRequest()).keys
    assert signing.state == "signing"
    staged = admin.stub.RotateKey(apb.RotateKeyRequest(algorithm="EdDSA", delay_seconds=3600))
    assert (staged.key.alg, staged.key.state) == ("EdDSA", "staged")
    now = int(env.clock())
    assert staged.key.not_before == now + 3600
    keys = admin.stub.ListKeys(apb.ListKeysRequest(page_size=1))
    assert [k.kid for k in keys.keys] == [signing.kid]
    rest = admin.stub.ListKeys(apb.ListKeysRequest(page_token=keys.next_page_token))
    assert [(k.kid, k.state) for k in rest.keys] == [(staged.key.kid, "staged")]

    withdrawn = admin.stub.WithdrawKey(apb.WithdrawKeyRequest(kid=staged.key.kid))
    assert withdrawn.key.kid == staged.key.kid
    assert [k.kid for k in admin.stub.ListKeys(apb.ListKeysRequest()).keys] == [signing.kid]
    for request, code in (
        (apb.WithdrawKeyRequest(kid="nope"), grpc.StatusCode.NOT_FOUND),
        (apb.WithdrawKeyRequest(kid=signing.kid), grpc.StatusCode.ALREADY_EXISTS),
    ):
        assert refusal(lambda r=request: admin.stub.WithdrawKey(r)).code() == code  # type: ignore[misc]
    for bad in (apb.RotateKeyRequest(algorithm="HS256"), apb.RotateKeyRequest(delay_seconds=-1)):
        error = refusal(lambda b=bad: admin.stub.RotateKey(b))  # type: ignore[misc]
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_revoke_token_id_and_list_revocations(env: AdminEnv, admin: AdminCaller) -> None:
    client = env.service.add_client("svc")
    issued = env.service.issue(client)
    stub = env.service.stub()
    verified = stub.VerifyToken(
        pb.VerifyTokenRequest(token=issued.access_token, audience="orders"), timeout=10
    )
    revoked = admin.stub.RevokeTokenId(apb.RevokeTokenIdRequest(token_id=verified.token_id))
    assert (revoked.revocation.kind, revoked.revocation.token_id) == ("token", verified.token_id)
    again = admin.stub.RevokeTokenId(apb.RevokeTokenIdRequest(token_id=verified.token_id))
    assert again.revocation.sequence == revoked.revocation.sequence  # idempotent
    answer = stub.VerifyToken(
        pb.VerifyTokenRequest(token=issued.access_token, audience="orders"), timeout=10
    )
    assert answer.reason == "TOKEN_REVOKED"
    subject = admin.stub.RevokeSubject(apb.RevokeSubjectRequest(name="svc"))
    assert (subject.revocation.kind, subject.revocation.target) == ("subject", "svc")
    listed = admin.stub.ListRevocations(apb.ListRevocationsRequest())
    assert [r.sequence for r in listed.revocations] == [
        subject.revocation.sequence,
        revoked.revocation.sequence,
    ]
    empty = refusal(lambda: admin.stub.RevokeTokenId(apb.RevokeTokenIdRequest()))
    assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_revoke_subject_refuses_its_tokens_and_keeps_the_account(
    env: AdminEnv, admin: AdminCaller
) -> None:
    client = env.service.add_client("svc")
    token = env.service.issue(client).access_token
    admin.stub.RevokeSubject(apb.RevokeSubjectRequest(name="svc"))
    stub = env.service.stub()
    answer = stub.VerifyToken(pb.VerifyTokenRequest(token=token, audience="orders"), timeout=10)
    assert answer.reason == "TOKEN_REVOKED"
    env.clock.now += 1  # a new token is issued after the subject's not-before
    fresh = env.service.issue(client).access_token
    assert stub.VerifyToken(pb.VerifyTokenRequest(token=fresh, audience="orders")).active


def test_list_audit_events_newest_first(env: AdminEnv, admin: AdminCaller) -> None:
    admin.stub.CreateClient(apb.CreateClientRequest(name="svc", audiences=["orders"]))
    admin.stub.UpdateClient(apb.UpdateClientRequest(name="svc", audiences=["billing"]))
    admin.stub.DeleteClient(apb.DeleteClientRequest(name="svc"))
    events = admin.stub.ListAuditEvents(apb.ListAuditEventsRequest()).events
    [first_key] = env.service.store.list_keys()  # created at start, by the service
    assert [(e.actor, e.action, e.target) for e in events] == [
        ("root", "client.delete", "svc"),
        ("root", "client.update", "svc"),
        ("root", "client.create", "svc"),
        ("local CLI", "client.create", "root"),
        ("token service", "key.rotate", first_key.kid),
    ]
    assert json.loads(events[1].detail_json) == {"audiences": ["billing"], "scopes": []}
    first = admin.stub.ListAuditEvents(apb.ListAuditEventsRequest(page_size=3))
    assert len(first.events) == 3 and first.next_page_token
    last = admin.stub.ListAuditEvents(
        apb.ListAuditEventsRequest(page_size=3, page_token=first.next_page_token)
    )
    assert [e.target for e in last.events] == ["root", first_key.kid]
    assert not last.next_page_token


def test_reflection_lists_the_admin_service(env: AdminEnv) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(env.channel())
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    [answer] = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
    names = {s.name for s in answer.list_services_response.service}
    assert "bearer_grpc.v1.AdminService" in names
