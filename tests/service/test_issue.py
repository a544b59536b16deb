"""IssueToken: client credentials and password grants, the RFC 9068 profile, input checks."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from bearer_grpc.service.settings import MAX_ACCESS_TTL, ServiceSettings
from bearer_grpc.store import sqlite_url
from bearer_grpc.testing import FrozenClock
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import (
    PASSWORD,
    RunningService,
    add_user,
    call_error,
    client_request,
    jwt_segment,
    password_request,
    refresh_request,
    running_service,
    verify,
)

# -- client credentials ----------------------------------------------------------------


def test_client_credentials_token_verifies(shared_service: RunningService) -> None:
    client = shared_service.add_client()
    issued = shared_service.issue(client)
    verified = verify(shared_service.stub(), issued.access_token)
    assert verified.active
    assert verified.subject == client.client_id
    assert verified.client_id == client.client_id


def test_client_credentials_token_follows_rfc9068(shared_service: RunningService) -> None:
    client = shared_service.add_client(
        scopes=("orders.read", "orders.write"), audiences=("orders",)
    )
    issued = shared_service.issue(client)
    jwks = json.loads(shared_service.stub().GetJwks(pb.GetJwksRequest(), timeout=10).jwks_json)

    header = jwt_segment(issued.access_token, 0)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}

    claims = jwt_segment(issued.access_token, 1)
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope"}
    assert claims["iss"] == shared_service.authority.settings.issuer
    assert claims["sub"] == client.client_id
    assert claims["aud"] == "orders"
    assert claims["client_id"] == client.client_id
    assert claims["scope"].split(" ") == ["orders.read", "orders.write"]
    assert claims["iat"] == claims["nbf"]
    assert claims["exp"] - claims["iat"] == shared_service.authority.settings.access_ttl
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16


def test_client_credentials_response_fields(shared_service: RunningService) -> None:
    issued = shared_service.issue(shared_service.add_client())
    assert issued.token_type == "Bearer"
    assert issued.expires_in == shared_service.authority.settings.access_ttl == 900
    assert issued.refresh_token == ""
    assert issued.refresh_expires_in == 0


def test_every_token_has_its_own_jti(shared_service: RunningService) -> None:
    client = shared_service.add_client()
    first, second = shared_service.issue(client), shared_service.issue(client)
    assert jwt_segment(first.access_token, 1)["jti"] != jwt_segment(second.access_token, 1)["jti"]


def test_requested_scope_subset_is_granted_exactly(shared_service: RunningService) -> None:
    client = shared_service.add_client(scopes=("orders.read", "orders.write", "orders.admin"))
    issued = shared_service.issue(client, scopes=["orders.write"])
    assert list(issued.scopes) == ["orders.write"]
    assert jwt_segment(issued.access_token, 1)["scope"] == "orders.write"


def test_no_requested_scopes_grants_all_allowed(shared_service: RunningService) -> None:
    client = shared_service.add_client(scopes=("orders.read", "orders.write"))
    issued = shared_service.issue(client)
    assert sorted(issued.scopes) == ["orders.read", "orders.write"]


def test_scope_not_allowed_is_permission_denied(shared_service: RunningService) -> None:
    client = shared_service.add_client(scopes=("orders.read",))
    err = call_error(
        shared_service.stub().IssueToken,
        client_request(client.client_id, client.client_secret, scopes=["orders.read", "x.y"]),
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]


def test_audience_not_allowed_is_permission_denied(shared_service: RunningService) -> None:
    client = shared_service.add_client(audiences=("orders",))
    err = call_error(
        shared_service.stub().IssueToken,
        client_request(client.client_id, client.client_secret, audience="billing"),
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]


def test_default_audience_is_the_first(shared_service: RunningService) -> None:
    client = shared_service.add_client(audiences=("orders", "billing"))
    assert jwt_segment(shared_service.issue(client).access_token, 1)["aud"] == "orders"
    chosen = shared_service.issue(client, audience="billing")
    assert jwt_segment(chosen.access_token, 1)["aud"] == "billing"
    assert verify(shared_service.stub(), chosen.access_token, audience="billing").active


def test_unknown_client_and_wrong_secret_look_the_same(shared_service: RunningService) -> None:
    client = shared_service.add_client()
    stub = shared_service.stub()
    unknown = call_error(stub.IssueToken, client_request("nobody", client.client_secret))
    wrong = call_error(stub.IssueToken, client_request(client.client_id, "x" * 43))
    for err in (unknown, wrong):
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert unknown.details() == wrong.details()  # type: ignore[attr-defined]
    assert client.client_secret not in wrong.details()  # type: ignore[attr-defined]


def test_client_secret_of_another_client_is_rejected(service: RunningService) -> None:
    first = service.add_client("first")
    second = service.add_client("second")
    err = call_error(
        service.stub().IssueToken, client_request(first.client_id, second.client_secret)
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]


def test_missing_grant_is_invalid_argument(shared_service: RunningService) -> None:
    err = call_error(shared_service.stub().IssueToken, pb.IssueTokenRequest(scopes=["orders.read"]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("client_id", "secret", "extra"),
    [
        pytest.param("", "s" * 43, {}, id="empty-client-id"),
        pytest.param("orders-client", "", {}, id="empty-secret"),
        pytest.param("orders-client", "s" * 513, {}, id="oversized-secret"),
        pytest.param("c" * 129, "s" * 43, {}, id="oversized-client-id"),
        pytest.param("orders-client", "s" * 43, {"scopes": ["orders read"]}, id="scope-space"),
        pytest.param("orders-client", "s" * 43, {"scopes": ['orders"read']}, id="scope-quote"),
        pytest.param("orders-client", "s" * 43, {"scopes": [""]}, id="scope-empty"),
        pytest.param(
            "orders-client", "s" * 43, {"scopes": [f"s{i}" for i in range(65)]}, id="65-scopes"
        ),
        pytest.param("orders-client", "s" * 43, {"audience": "or ders"}, id="audience-space"),
        pytest.param("orders-client", "s" * 43, {"audience": 'or"ders'}, id="audience-quote"),
        pytest.param("orders-client", "s" * 43, {"audience": "a" * 257}, id="audience-long"),
    ],
)
def test_malformed_request_is_invalid_argument(
    shared_service: RunningService, client_id: str, secret: str, extra: dict[str, object]
) -> None:
    client = shared_service.add_client()
    secret = client.client_secret if secret == "s" * 43 else secret
    err = call_error(shared_service.stub().IssueToken, client_request(client_id, secret, **extra))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert client.client_secret not in err.details()  # type: ignore[attr-defined]


def test_64_scopes_are_accepted(shared_service: RunningService) -> None:
    scopes = tuple(f"s{i}" for i in range(64))
    client = shared_service.add_client(scopes=scopes)
    assert len(shared_service.issue(client, scopes=list(scopes)).scopes) == 64


# -- password grant ----------------------------------------------------------------------


def test_password_grant_issues_access_and_refresh_tokens(service: RunningService) -> None:
    add_user(service, "alice")
    stub = service.stub()
    issued = stub.IssueToken(password_request("alice", scopes=["orders.read"]), timeout=10)
    assert issued.token_type == "Bearer"
    assert list(issued.scopes) == ["orders.read"]
    assert len(issued.refresh_token) == 43
    assert issued.refresh_expires_in == service.authority.settings.refresh_ttl
    claims = jwt_segment(issued.access_token, 1)
    assert claims["sub"] == "alice"
    assert claims["client_id"] == "bearer-grpc"
    assert claims["aud"] == "orders"
    verified = verify(stub, issued.access_token)
    assert verified.active and verified.subject == "alice" and verified.client_id == "bearer-grpc"


@pytest.mark.slow
def test_wrong_password_and_unknown_user_look_the_same(service: RunningService) -> None:
    add_user(service, "alice")
    stub = service.stub()
    wrong = call_error(stub.IssueToken, password_request("alice", "not the password"))
    unknown = call_error(stub.IssueToken, password_request("mallory", PASSWORD))
    for err in (wrong, unknown):
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert wrong.details() == unknown.details()  # type: ignore[attr-defined]
    assert "not the password" not in wrong.details()  # type: ignore[attr-defined]


def test_client_credentials_cannot_log_in_as_user(shared_service: RunningService) -> None:
    """A client's secret is not a user's password: the namespaces are kinds apart."""
    client = shared_service.add_client()
    err = call_error(
        shared_service.stub().IssueToken, password_request(client.client_id, client.client_secret)
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("username", "password"),
    [("", PASSWORD), ("alice", ""), ("alice", "p" * 513)],
    ids=["empty-username", "empty-password", "oversized-password"],
)
def test_malformed_password_grant_is_invalid_argument(
    shared_service: RunningService, username: str, password: str
) -> None:
    err = call_error(shared_service.stub().IssueToken, password_request(username, password))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


# -- lifetimes -------------------------------------------------------------------------------


@pytest.mark.slow
def test_configured_lifetimes_are_honoured(data_dir: Path, clock: FrozenClock) -> None:
    settings = ServiceSettings(access_ttl=120, refresh_ttl=600)
    with running_service(sqlite_url(data_dir), settings=settings, clock=clock) as service:
        add_user(service, "alice")
        stub = service.stub()
        cc = service.issue(service.add_client())
        assert cc.expires_in == 120
        claims = jwt_segment(cc.access_token, 1)
        assert claims["exp"] - claims["iat"] == 120
        assert claims["iat"] == int(clock.now)

        login = stub.IssueToken(password_request("alice"), timeout=10)
        assert (login.expires_in, login.refresh_expires_in) == (120, 600)

        clock.advance(599)
        refreshed = stub.IssueToken(refresh_request(login.refresh_token), timeout=10)
        assert refreshed.expires_in == 120
        clock.advance(600)  # the rotated refresh token is 600 s old now
        err = call_error(stub.IssueToken, refresh_request(refreshed.refresh_token))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]


@pytest.mark.parametrize("access_ttl", [MAX_ACCESS_TTL + 1, 59, 0])
def test_settings_reject_access_ttl_out_of_range(access_ttl: int) -> None:
    with pytest.raises(ValueError, match="access token lifetime"):
        ServiceSettings(access_ttl=access_ttl, refresh_ttl=max(access_ttl, 3600))


def test_settings_accept_one_day_access_ttl() -> None:
    assert ServiceSettings(access_ttl=MAX_ACCESS_TTL).access_ttl == MAX_ACCESS_TTL


def test_settings_reject_refresh_shorter_than_access() -> None:
    with pytest.raises(ValueError, match="refresh token lifetime"):
        ServiceSettings(access_ttl=900, refresh_ttl=899)
