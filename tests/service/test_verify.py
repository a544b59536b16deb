"""VerifyToken: introspection of good tokens, and a reason (status OK) for every bad one."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from bearer_grpc.core.keys import SigningKey
from bearer_grpc.core.tokens import issue_access_token
from bearer_grpc.store import sqlite_url
from bearer_grpc.testing import FrozenClock
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import RunningService, call_error, jwt_segment, running_service, verify


def test_active_token_fields(shared_service: RunningService) -> None:
    client = shared_service.add_client(scopes=("orders.write", "orders.read"))
    issued = shared_service.issue(client)
    claims = jwt_segment(issued.access_token, 1)
    result = verify(shared_service.stub(), issued.access_token)
    assert result.active
    assert result.reason == ""
    assert result.subject == client.client_id
    assert list(result.scopes) == ["orders.read", "orders.write"]  # sorted
    assert list(result.audience) == ["orders"]
    assert result.issuer == "bearer-grpc"
    assert result.token_id == claims["jti"]
    assert result.issued_at == claims["iat"]
    assert result.expires_at == claims["exp"]
    assert result.client_id == client.client_id
    assert result.claims["sub"] == client.client_id
    assert result.claims["jti"] == claims["jti"]
    assert result.claims["scope"] == claims["scope"]


def test_required_scopes_present_is_active(shared_service: RunningService) -> None:
    issued = shared_service.issue(shared_service.add_client())
    result = verify(shared_service.stub(), issued.access_token, required_scopes=["orders.read"])
    assert result.active


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b", "a.b.c", "eyJ.eyJ.sig", "Bearer x.y.z", "a..c"],
)
def test_garbage_is_malformed_with_status_ok(shared_service: RunningService, token: str) -> None:
    result = verify(shared_service.stub(), token)
    assert (result.active, result.reason) == (False, "TOKEN_MALFORMED")
    assert result.subject == "" and result.token_id == ""


def test_oversized_token_is_malformed_with_status_ok(shared_service: RunningService) -> None:
    issued = shared_service.issue(shared_service.add_client())
    huge = issued.access_token + "A" * (20 * 1024)
    result = verify(shared_service.stub(), huge)
    assert (result.active, result.reason) == (False, "TOKEN_MALFORMED")


def test_wrong_audience_is_invalid(shared_service: RunningService) -> None:
    issued = shared_service.issue(shared_service.add_client(audiences=("orders",)))
    result = verify(shared_service.stub(), issued.access_token, audience="billing")
    assert (result.active, result.reason) == (False, "TOKEN_INVALID")


def test_tampered_claims_are_invalid(service: RunningService) -> None:
    issued = service.issue(service.add_client())
    header, _claims, signature = issued.access_token.split(".")
    other = service.issue(service.add_client("other-client"))
    forged = ".".join([header, other.access_token.split(".")[1], signature])
    result = verify(service.stub(), forged)
    assert (result.active, result.reason) == (False, "TOKEN_INVALID")


def test_token_of_another_deployment_is_invalid(shared_service: RunningService) -> None:
    foreign_key = SigningKey.generate("ES256")
    foreign = issue_access_token(
        foreign_key,
        issuer=shared_service.authority.settings.issuer,  # same issuer name, other keys
        subject="orders-client",
        audience="orders",
        scopes=["orders.read"],
        client_id="orders-client",
        lifetime=900,
        now=int(time.time()),
    )
    result = verify(shared_service.stub(), foreign.token)
    assert (result.active, result.reason) == (False, "TOKEN_INVALID")


def test_token_of_another_running_deployment_is_invalid(
    shared_service: RunningService, tmp_path: Path
) -> None:
    with running_service(sqlite_url(tmp_path / "elsewhere")) as elsewhere:
        issued = elsewhere.issue(elsewhere.add_client())
        assert verify(elsewhere.stub(), issued.access_token).active
    result = verify(shared_service.stub(), issued.access_token)
    assert (result.active, result.reason) == (False, "TOKEN_INVALID")


def test_token_expires_after_exp_plus_leeway(
    clocked_service: RunningService, clock: FrozenClock
) -> None:
    issued = clocked_service.issue(clocked_service.add_client())
    exp = jwt_segment(issued.access_token, 1)["exp"]
    leeway = clocked_service.authority.settings.leeway
    stub = clocked_service.stub()

    clock.now = exp + leeway - 1
    assert verify(stub, issued.access_token).active
    clock.now = exp + leeway
    result = verify(stub, issued.access_token)
    assert (result.active, result.reason) == (False, "TOKEN_EXPIRED")


def test_revoked_token_is_revoked(shared_service: RunningService) -> None:
    issued = shared_service.issue(shared_service.add_client())
    stub = shared_service.stub()
    stub.RevokeToken(pb.RevokeTokenRequest(token=issued.access_token), timeout=10)
    result = verify(stub, issued.access_token)
    assert (result.active, result.reason) == (False, "TOKEN_REVOKED")


def test_revoked_token_stays_revoked_within_leeway_after_exp(
    clocked_service: RunningService, clock: FrozenClock
) -> None:
    """A revoked token must not come back to life in the leeway window after ``exp``.

    The verifier accepts a token until ``exp + leeway``; the revocation must be kept at
    least as long, also after the in-memory log is pruned by a sync.
    """
    issued = clocked_service.issue(clocked_service.add_client())
    exp = jwt_segment(issued.access_token, 1)["exp"]
    stub = clocked_service.stub()
    stub.RevokeToken(pb.RevokeTokenRequest(token=issued.access_token), timeout=10)

    clock.now = exp + 1  # expired, but within the 30 s leeway
    clocked_service.authority.sync()  # what the server's sync loop does every second
    result = verify(stub, issued.access_token)
    assert not result.active, "a revoked token verified as active again"
    assert result.reason in ("TOKEN_REVOKED", "TOKEN_EXPIRED")


def test_missing_required_scope_is_insufficient_scope(shared_service: RunningService) -> None:
    issued = shared_service.issue(shared_service.add_client(), scopes=["orders.read"])
    result = verify(
        shared_service.stub(), issued.access_token, required_scopes=["orders.read", "orders.write"]
    )
    assert (result.active, result.reason) == (False, "INSUFFICIENT_SCOPE")


@pytest.mark.parametrize(
    ("token", "audience"),
    [("", "orders"), ("x.y.z", ""), ("x.y.z", "bad audience")],
    ids=["empty-token", "empty-audience", "malformed-audience"],
)
def test_empty_token_or_audience_is_invalid_argument(
    shared_service: RunningService, token: str, audience: str
) -> None:
    err = call_error(
        shared_service.stub().VerifyToken, pb.VerifyTokenRequest(token=token, audience=audience)
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


def test_malformed_required_scope_is_invalid_argument(shared_service: RunningService) -> None:
    issued = shared_service.issue(shared_service.add_client())
    err = call_error(
        shared_service.stub().VerifyToken,
        pb.VerifyTokenRequest(
            token=issued.access_token, audience="orders", required_scopes=["a b"]
        ),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
