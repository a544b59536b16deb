"""Python OAuth clients and a JWT verifier no one here wrote, against the HTTP face:
authlib (sync ``OAuth2Session`` on requests, async ``AsyncOAuth2Client`` on httpx) for
client credentials and for password-then-refresh, requests-oauthlib's backend
application flow, and PyJWT's ``PyJWKClient`` verifying our tokens with the keys at
discovery's ``jwks_uri``.

The client ``svc+interop`` has a ``+`` in its id: these clients send Basic credentials
without the form-encoding RFC 6749 asks for, so the raw reading is what lets them in.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
import warnings
from collections.abc import Iterator

import jwt
import pytest
from authlib.integrations.requests_client import OAuth2Session
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session as RequestsOAuth2Session

from bearer_grpc.service.admin import NewClient
from bearer_grpc.store import AccountKind
from tests.harness import HTTP_AUDIENCE, PASSWORD, Http, http_service, verify, wait_until

with warnings.catch_warnings():
    # authlib 1.9 announces, on import, that a later release moves to the httpx2 package.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client


RACING_FETCHES = 16
"""authlib clients fetching at once while their client is removed."""


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    """A TokenService with its HTTP face on loopback (plain HTTP: loopback issuer)."""
    with http_service(tmp_path_factory.mktemp("interop-http") / "data") as running:
        yield running


@pytest.fixture(scope="module")
def plus_client(http: Http) -> NewClient:
    """A client whose id holds a ``+``."""
    return http.service.add_client(
        "svc+interop", scopes=("orders.read",), audiences=(HTTP_AUDIENCE,)
    )


@pytest.fixture(autouse=True)
def _loopback_http(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both libraries refuse http:// unless told; the face is on loopback in these tests.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def _discovery(http: Http) -> dict[str, object]:
    url = http.url("/.well-known/oauth-authorization-server")
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback http)
        document: dict[str, object] = json.load(response)
    return document


def _verify(http: Http, token: str) -> dict[str, object]:
    """PyJWT, with keys and algorithms from discovery only."""
    document = _discovery(http)
    keys = jwt.PyJWKClient(str(document["jwks_uri"]))
    key = keys.get_signing_key_from_jwt(token)
    algorithms = list(document["id_token_signing_alg_values_supported"])  # type: ignore[call-overload]
    claims: dict[str, object] = jwt.decode(
        token, key, algorithms=algorithms, audience=HTTP_AUDIENCE, issuer=str(document["issuer"])
    )
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    return claims


def test_authlib_sync_client_credentials(http: Http, plus_client: NewClient) -> None:
    with OAuth2Session(
        plus_client.client_id, plus_client.client_secret, scope="orders.read"
    ) as session:
        token = session.fetch_token(http.url("/token"), grant_type="client_credentials")
    assert token["token_type"] == "Bearer" and token["scope"] == "orders.read"
    assert _verify(http, token["access_token"])["sub"] == "svc+interop"


def test_authlib_sync_password_then_refresh(http: Http) -> None:
    with OAuth2Session("bearer-grpc", token_endpoint_auth_method="none") as session:
        first = session.fetch_token(http.url("/token"), username="alice", password=PASSWORD)
        second = session.refresh_token(http.url("/token"))
    assert second["refresh_token"] != first["refresh_token"]
    assert _verify(http, second["access_token"])["sub"] == "alice"


def test_authlib_async_client_credentials_and_refresh(http: Http, plus_client: NewClient) -> None:
    async def run() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        async with AsyncOAuth2Client(
            plus_client.client_id, plus_client.client_secret, scope="orders.read"
        ) as client:
            service = await client.fetch_token(http.url("/token"), grant_type="client_credentials")
        async with AsyncOAuth2Client("bearer-grpc", token_endpoint_auth_method="none") as login:
            first = await login.fetch_token(http.url("/token"), username="alice", password=PASSWORD)
            second = await login.refresh_token(http.url("/token"))
        return service, first, second

    service, first, second = asyncio.run(run())
    assert _verify(http, service["access_token"])["client_id"] == "svc+interop"
    assert second["refresh_token"] != first["refresh_token"]
    assert _verify(http, second["access_token"])["sub"] == "alice"


def test_authlib_wrong_secret_is_an_oauth_error(http: Http, plus_client: NewClient) -> None:
    from authlib.integrations.base_client.errors import OAuthError

    with (
        OAuth2Session(plus_client.client_id, "wrong-secret") as session,
        pytest.raises(OAuthError) as caught,
    ):
        session.fetch_token(http.url("/token"), grant_type="client_credentials")
    assert caught.value.error == "invalid_client"


def test_authlib_clients_racing_a_removal_keep_no_working_token(http: Http) -> None:
    """Concurrent authlib fetches while the client is removed on the store (as the CLI does,
    unannounced to the server, which holds the client in memory): whatever each fetch got,
    every token is refused within a second, and the next fetch is ``invalid_client``."""
    from authlib.integrations.base_client.errors import OAuthError

    doomed = http.service.add_client(
        "svc-doomed", scopes=("orders.read",), audiences=(HTTP_AUDIENCE,)
    )

    async def fetch() -> str | None:
        async with AsyncOAuth2Client(doomed.client_id, doomed.client_secret) as client:
            try:
                answer = await client.fetch_token(
                    http.url("/token"), grant_type="client_credentials"
                )
            except OAuthError as err:
                assert err.error == "invalid_client"
                return None
        token: str = answer["access_token"]
        return token

    async def race() -> list[str | None]:
        first = await fetch()  # from now on the server remembers the client
        fetches = [asyncio.ensure_future(fetch()) for _ in range(RACING_FETCHES)]
        await asyncio.to_thread(http.service.admin.remove, doomed.client_id, AccountKind.CLIENT)
        return [first, *await asyncio.gather(*fetches)]

    tokens = [token for token in asyncio.run(race()) if token is not None]
    assert tokens  # the first fetch, at least, came before the removal
    stub = http.service.stub()
    wait_until(
        lambda: all(
            verify(stub, token, HTTP_AUDIENCE).reason == "TOKEN_REVOKED" for token in tokens
        ),
        timeout=1.0,
    )
    assert asyncio.run(fetch()) is None


def test_requests_oauthlib_backend_application(http: Http) -> None:
    client = BackendApplicationClient(client_id=http.client.client_id)
    with RequestsOAuth2Session(client=client) as session:
        token = session.fetch_token(
            token_url=http.url("/token"),
            client_id=http.client.client_id,
            client_secret=http.client.client_secret,
            scope=["orders.read", "orders.write"],
        )
    assert token["scope"] == ["orders.read", "orders.write"]  # it splits the string
    assert _verify(http, token["access_token"])["sub"] == "svc-a"


def test_pyjwkclient_refuses_a_token_of_another_issuer(http: Http) -> None:
    from bearer_grpc.testing import TestIssuer

    other = TestIssuer().token(audience=HTTP_AUDIENCE)
    with pytest.raises(jwt.PyJWKClientError):
        _verify(http, other)
