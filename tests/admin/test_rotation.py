"""Client secret rotation with overlap: the new secret works at once, the old one until
the deadline the operator chose (by the service's clock), and not a second longer."""

from __future__ import annotations

import grpc

from bearer_grpc.store import AccountKind
from bearer_grpc.v1 import admin_service_pb2 as apb
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.admin.conftest import AdminCaller, AdminEnv
from tests.harness import refusal


def _works(env: AdminEnv, client_id: str, secret: str) -> bool:
    request = pb.IssueTokenRequest(
        client_credentials=pb.ClientCredentialsGrant(client_id=client_id, client_secret=secret)
    )
    try:
        env.service.stub().IssueToken(request, timeout=10)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        return False
    return True


def test_old_secret_works_until_the_deadline_then_is_refused(
    env: AdminEnv, admin: AdminCaller
) -> None:
    old = admin.stub.CreateClient(
        apb.CreateClientRequest(name="svc", audiences=["orders"])
    ).client_secret
    rotated = admin.stub.RotateClientSecret(
        apb.RotateClientSecretRequest(name="svc", old_secret_valid_seconds=3600)
    )
    new = rotated.client_secret
    assert new != old
    deadline = int(env.clock()) + 3600
    assert rotated.client.previous_secret_valid_until == deadline
    assert _works(env, "svc", new) and _works(env, "svc", old)

    env.clock.now = deadline - 1
    assert _works(env, "svc", old)
    env.clock.now = deadline
    assert not _works(env, "svc", old)
    assert _works(env, "svc", new)


def test_without_overlap_the_old_secret_stops_at_once(env: AdminEnv, admin: AdminCaller) -> None:
    old = admin.stub.CreateClient(
        apb.CreateClientRequest(name="svc", audiences=["orders"])
    ).client_secret
    rotated = admin.stub.RotateClientSecret(apb.RotateClientSecretRequest(name="svc"))
    assert rotated.client.previous_secret_valid_until == 0
    assert not _works(env, "svc", old)
    assert _works(env, "svc", rotated.client_secret)


def test_a_second_rotation_drops_the_first_secret(env: AdminEnv, admin: AdminCaller) -> None:
    first = admin.stub.CreateClient(
        apb.CreateClientRequest(name="svc", audiences=["orders"])
    ).client_secret
    request = apb.RotateClientSecretRequest(name="svc", old_secret_valid_seconds=3600)
    second = admin.stub.RotateClientSecret(request).client_secret
    third = admin.stub.RotateClientSecret(request).client_secret
    assert not _works(env, "svc", first)
    assert _works(env, "svc", second) and _works(env, "svc", third)


def test_both_secrets_are_stored_hashed(env: AdminEnv, admin: AdminCaller) -> None:
    old = admin.stub.CreateClient(
        apb.CreateClientRequest(name="svc", audiences=["orders"])
    ).client_secret
    new = admin.stub.RotateClientSecret(
        apb.RotateClientSecretRequest(name="svc", old_secret_valid_seconds=60)
    ).client_secret
    stored = env.service.store.get_account("svc", AccountKind.CLIENT)
    assert stored is not None
    hashes = (stored.credential_hash, stored.previous_credential_hash)
    assert all(h.startswith("hmac-sha256$") for h in hashes)
    assert not {old, new} & set(hashes)
    assert old not in repr(stored) and stored.previous_credential_hash not in repr(stored)


def test_a_wrong_secret_is_refused_during_the_overlap(env: AdminEnv, admin: AdminCaller) -> None:
    admin.stub.CreateClient(apb.CreateClientRequest(name="svc", audiences=["orders"]))
    admin.stub.RotateClientSecret(
        apb.RotateClientSecretRequest(name="svc", old_secret_valid_seconds=3600)
    )
    assert not _works(env, "svc", "a" * 43)
    missing = refusal(
        lambda: admin.stub.RotateClientSecret(apb.RotateClientSecretRequest(name="nobody"))
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
