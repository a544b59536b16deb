"""POST /token (RFC 6749): the three grants, both client authentication methods, scope
and audience (``audience`` or RFC 8707 ``resource``), and the §5.2 error answers."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import jwt
import pytest

from bearer_grpc.testing import FrozenClock
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import HTTP_AUDIENCE, HTTP_SCOPES, PASSWORD, Http, http_service
from tests.http._support import basic


def _claims(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _no_store(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["cache-control"] == "no-store"
    assert headers["pragma"] == "no-cache"


def test_client_credentials_with_basic(http: Http) -> None:
    response = http.post(
        "/token",
        {"grant_type": "client_credentials"},
        auth=(http.client.client_id, http.client.client_secret),
    )
    assert response.status_code == 200
    _no_store(response)
    answer = response.json()
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 900
    assert answer["scope"] == " ".join(HTTP_SCOPES)
    assert "refresh_token" not in answer  # RFC 6749 §4.4.3
    claims = _claims(answer["access_token"])
    assert (claims["iss"], claims["sub"], claims["aud"]) == (http.issuer, "svc-a", HTTP_AUDIENCE)


def test_client_credentials_with_post(http: Http) -> None:
    response = http.post(
        "/token",
        {
            "grant_type": "client_credentials",
            "client_id": http.client.client_id,
            "client_secret": http.client.client_secret,
            "scope": "orders.read",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "orders.read"


def test_basic_credentials_form_encoded_as_rfc_6749_asks(http: Http) -> None:
    client_id = urllib.parse.quote_plus(http.client.client_id)
    secret = urllib.parse.quote_plus(http.client.client_secret)
    response = http.post(
        "/token",
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic(client_id, secret)},
    )
    assert response.status_code == 200, response.text


def test_token_from_http_verifies_over_grpc(http: Http) -> None:
    token = http.client_token()["access_token"]
    stub = http.service.stub()
    answer = stub.VerifyToken(
        pb.VerifyTokenRequest(token=token, audience=HTTP_AUDIENCE), timeout=10
    )
    assert answer.active and answer.subject == "svc-a"


def test_audience_and_rfc_8707_resource(http: Http) -> None:
    assert _claims(http.client_token(audience="billing")["access_token"])["aud"] == "billing"
    assert _claims(http.client_token(resource="billing")["access_token"])["aud"] == "billing"
    both = http.post(
        "/token",
        {"grant_type": "client_credentials", "audience": "billing", "resource": "billing"},
        auth=(http.client.client_id, http.client.client_secret),
    )
    assert (both.status_code, both.json()["error"]) == (400, "invalid_request")


def test_scope_not_allowed_is_invalid_scope(http: Http) -> None:
    response = http.post(
        "/token",
        {"grant_type": "client_credentials", "scope": "orders.read payments.admin"},
        auth=(http.client.client_id, http.client.client_secret),
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_scope")
    _no_store(response)


def test_audience_not_allowed_is_invalid_target(http: Http) -> None:
    response = http.post(
        "/token",
        {"grant_type": "client_credentials", "resource": "https://payments.example"},
        auth=(http.client.client_id, http.client.client_secret),
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_target")


def test_wrong_secret_is_invalid_client_401_with_a_challenge(http: Http) -> None:
    for auth in ((http.client.client_id, "wrong-secret"), ("nobody", "wrong-secret")):
        response = http.post("/token", {"grant_type": "client_credentials"}, auth=auth)
        assert response.status_code == 401
        assert response.json() == {
            "error": "invalid_client",
            "error_description": "client authentication failed",
        }
        assert response.headers["www-authenticate"].startswith("Basic realm=")
        _no_store(response)


def test_client_credentials_without_authentication_is_invalid_client(http: Http) -> None:
    response = http.post("/token", {"grant_type": "client_credentials", "client_id": "svc-a"})
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_password_then_refresh_for_the_public_login_client(http: Http) -> None:
    login = http.post(
        "/token",
        {
            "grant_type": "password",
            "username": "alice",
            "password": PASSWORD,
            "client_id": "bearer-grpc",
        },
    )
    assert login.status_code == 200, login.text
    first = login.json()
    assert _claims(first["access_token"])["client_id"] == "bearer-grpc"
    refreshed = http.post(
        "/token", {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != first["refresh_token"]  # rotated
    reused = http.post(
        "/token", {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")


def test_wrong_password_is_invalid_grant(http: Http) -> None:
    response = http.post(
        "/token", {"grant_type": "password", "username": "alice", "password": "not-it-at-all"}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "invalid credentials"}


@pytest.mark.slow  # seven scrypt checks
def test_throttled_sign_in_is_429_with_retry_after(tmp_path: Path) -> None:
    """Password guessing is held off as over gRPC (RESOURCE_EXHAUSTED with RetryInfo): 429
    ``temporarily_unavailable`` and ``Retry-After``, the same delay growing after each
    failure, even for the right password, which is not checked while held."""
    clock = FrozenClock(float(int(time.time())))
    with http_service(tmp_path / "data", clock=clock) as own:
        wrong = {"grant_type": "password", "username": "alice", "password": "not-it-at-all"}
        for _ in range(6):  # a few failures are free; the sixth starts the delays
            assert own.post("/token", wrong).status_code == 400
        right = {**wrong, "password": PASSWORD}
        for delay in (1, 2):
            held = own.post("/token", right)
            assert held.status_code == 429, held.text
            assert held.headers["retry-after"] == str(delay)
            assert held.json()["error"] == "temporarily_unavailable"
            clock.advance(delay)
            assert own.post("/token", wrong).status_code == 400
        clock.advance(4)
        assert own.post("/token", right).status_code == 200


def test_registered_client_may_not_use_the_password_grant(http: Http) -> None:
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    response = http.post("/token", form, auth=(http.client.client_id, http.client.client_secret))
    assert (response.status_code, response.json()["error"]) == (400, "unauthorized_client")
    named = http.post("/token", {**form, "client_id": "svc-a"})
    assert (named.status_code, named.json()["error"]) == (400, "unauthorized_client")


def test_unknown_and_missing_grant_types(http: Http) -> None:
    auth = (http.client.client_id, http.client.client_secret)
    unknown = http.post("/token", {"grant_type": "authorization_code"}, auth=auth)
    assert (unknown.status_code, unknown.json()["error"]) == (400, "unsupported_grant_type")
    missing = http.post("/token", {"scope": "orders.read"}, auth=auth)
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
