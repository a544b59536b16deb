"""Fetching is an attack surface: hostile or broken identity providers, and tokens that
try to choose where a verifier fetches. Each case ends fail closed or with the good keys
only, and the server side shows which requests were (not) made."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc import TokenProfile
from tests.issuers._support import LocalServer, Route, VendorKey

ISSUER = "https://idp.example"
AUDIENCE = "orders"
FAST = {"startup_timeout": 1.0, "connect_timeout": 0.5, "read_timeout": 0.5}
PATIENT = {"startup_timeout": 10.0}
"""For a verifier that must succeed: it does as soon as its fetch answers, and a starved
two-core machine may take more than FAST's second to serve the loopback fetch."""


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "svc", "aud": AUDIENCE, "iat": now, "exp": now + 300,
            "jti": "t-1", "scope": "orders.read"}  # fmt: skip
    return {**base, **changes}


def from_url(server: LocalServer, path: str = "/keys", **kwargs: Any) -> bearer_grpc.Verifier:
    options = {**FAST, **kwargs}
    return bearer_grpc.Verifier.from_jwks_url(
        f"{server.url}{path}", issuer=ISSUER, audience=AUDIENCE, **options
    )


def refused_for_want_of_keys(server: LocalServer, route: Route, key: VendorKey) -> None:
    server.routes["/keys"] = route
    with from_url(server) as verifier, pytest.raises(bearer_grpc.VerifierUnavailable):
        verifier.verify(key.sign(claims(), typ="at+jwt"))


@pytest.mark.slow
def test_stalled_jwks_times_out(server: LocalServer) -> None:
    key = VendorKey()
    started = time.monotonic()
    refused_for_want_of_keys(server, Route(key.jwks, stall=30), key)
    assert time.monotonic() - started < 10


@pytest.mark.slow
def test_huge_jwks_is_capped(server: LocalServer) -> None:
    key = VendorKey()
    huge = {
        "keys": [key.jwk] + [{"kty": "oct", "k": "A" * 1000, "kid": str(i)} for i in range(300)]
    }
    refused_for_want_of_keys(server, Route(huge), key)


@pytest.mark.slow
def test_redirect_to_another_host_is_not_followed(server: LocalServer) -> None:
    key = VendorKey()
    with LocalServer() as other:
        other.routes["/keys"] = Route(key.jwks)
        redirect = Route(status=302, headers={"Location": f"{other.url}/keys"})
        refused_for_want_of_keys(server, redirect, key)
        assert other.requests == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "route",
    [
        Route(b"<html>keys</html>"),
        Route(b'{"keys": [], "keys": []}'),
        Route({"keys": []}, 201),
        Route(b"", 304),
        Route({"keys": []}, 500),
    ],
    ids=["not-json", "duplicate-member", "status-201", "304-without-cache", "status-500"],
)
def test_unusable_answers_fail_closed(server: LocalServer, route: Route) -> None:
    refused_for_want_of_keys(server, route, VendorKey())


def test_bad_keys_are_skipped_not_the_set(server: LocalServer) -> None:
    key, other = VendorKey(), VendorKey("enc-key")
    private = {**other.jwk, "kid": "private", "d": "AAAA"}
    symmetric = {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}
    encryption = {**other.jwk, "use": "enc", "alg": "RSA-OAEP"}  # Keycloak lists one
    server.routes["/keys"] = Route({"keys": [private, symmetric, encryption, key.jwk]})
    with from_url(server) as verifier:
        assert verifier.verify(key.sign(claims(), typ="at+jwt")).subject == "svc"
        assert set(verifier.local.keys or ()) == {key.kid}
        with pytest.raises(bearer_grpc.TokenInvalid):
            verifier.verify(other.sign(claims(), typ="at+jwt"))


@pytest.mark.slow
def test_a_jwks_whose_keys_all_fail_hygiene_fails_closed(server: LocalServer) -> None:
    key = VendorKey()
    public_only = {k: v for k, v in key.jwk.items() if k != "alg"}
    bad = [{**public_only, "d": "AAAA"}, {"kty": "oct", "kid": "h", "k": "AAAA"},
           {**public_only, "use": "enc"}]  # fmt: skip
    refused_for_want_of_keys(server, Route({"keys": bad}), key)


@pytest.mark.slow
def test_discovery_issuer_mismatch_fails_closed(server: LocalServer) -> None:
    key = VendorKey()
    server.routes["/keys"] = Route(key.jwks)
    server.routes["/.well-known/openid-configuration"] = Route(
        {"issuer": "https://attacker.example", "jwks_uri": f"{server.url}/keys"}
    )
    verifier = bearer_grpc.Verifier.from_issuer(server.url, audience=AUDIENCE, **FAST)
    with verifier, pytest.raises(bearer_grpc.VerifierUnavailable):
        verifier.verify(key.sign(claims(iss=server.url), typ="at+jwt"))
    assert "/keys" not in server.paths()


def test_rfc8414_path_insertion_after_oidc_is_missing(server: LocalServer) -> None:
    key = VendorKey()
    issuer = f"{server.url}/realms/shop"
    server.routes["/keys"] = Route(key.jwks)
    server.routes["/.well-known/oauth-authorization-server/realms/shop"] = Route(
        {"issuer": issuer, "jwks_uri": f"{server.url}/keys"}
    )
    with bearer_grpc.Verifier.from_issuer(issuer, audience=AUDIENCE, **PATIENT) as verifier:
        assert verifier.verify(key.sign(claims(iss=issuer), typ="at+jwt")).issuer == issuer
    assert server.paths()[:2] == [
        "/realms/shop/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server/realms/shop",
    ]


@pytest.mark.parametrize(
    "url",
    ["http://idp.example", "http://10.0.0.1/realm", "ftp://127.0.0.1/", "https://u:p@idp.example"],
)
def test_plain_http_off_loopback_and_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        bearer_grpc.Verifier.from_issuer(url, audience=AUDIENCE)
    with pytest.raises(ValueError):
        bearer_grpc.Verifier.from_jwks_url(url, issuer=ISSUER, audience=AUDIENCE)


def test_a_token_never_chooses_where_to_fetch(server: LocalServer) -> None:
    key, attacker = VendorKey(), VendorKey("attacker-key")
    server.routes["/keys"] = Route(key.jwks)
    server.routes["/attacker"] = Route(attacker.jwks)
    with from_url(server) as verifier:
        for token in (
            attacker.sign(claims(), typ="at+jwt", jku=f"{server.url}/attacker"),
            attacker.sign(claims(), typ="at+jwt", x5u=f"{server.url}/attacker"),
            attacker.sign(claims(iss=f"{server.url}/attacker"), typ="at+jwt"),
        ):
            with pytest.raises(bearer_grpc.TokenInvalid):
                verifier.verify(token)
    assert "/attacker" not in server.paths()


def test_id_token_presented_as_access_token_is_refused(server: LocalServer) -> None:
    key = VendorKey()
    server.routes["/keys"] = Route(key.jwks)
    nonce = key.sign(claims(nonce="n-0S6_WzA2Mj"), typ="JWT")
    self_addressed = key.sign(claims(aud="orders", azp="orders"), typ="JWT")
    with from_url(server, profile=TokenProfile.keycloak()) as verifier:
        for token in (nonce, self_addressed):
            with pytest.raises(bearer_grpc.TokenInvalid):
                verifier.verify(token)
    opted_in = TokenProfile.keycloak(allow_id_tokens=True)
    with from_url(server, profile=opted_in) as verifier:
        assert verifier.verify(nonce).subject == "svc"


def test_unknown_kid_refetch_is_conditional_and_rate_limited(server: LocalServer) -> None:
    key = VendorKey()
    server.routes["/keys"] = Route(
        key.jwks, headers={"ETag": '"v1"', "Cache-Control": "max-age=3600"}
    )
    with from_url(server) as verifier:
        assert verifier.verify(key.sign(claims(), typ="at+jwt")).subject == "svc"
        server.routes["/keys"] = Route(b"", 304)
        stranger = VendorKey("unknown-kid")
        for _ in range(5):
            with pytest.raises(bearer_grpc.TokenInvalid):
                verifier.verify(stranger.sign(claims(), typ="at+jwt"))
        assert verifier.verify(key.sign(claims(jti="t-2"), typ="at+jwt")).subject == "svc"
    assert server.paths() == ["/keys", "/keys"]  # the start, then one refetch for the kid
    assert server.requests[1][1].get("If-None-Match") == '"v1"'


@pytest.mark.slow
def test_aio_hostile_answer_fails_closed_then_recovers(server: LocalServer) -> None:
    key = VendorKey()
    server.routes["/keys"] = Route(b"not json")
    token = key.sign(claims(), typ="at+jwt")

    async def main() -> None:
        verifier = bearer_grpc.aio.Verifier.from_jwks_url(
            f"{server.url}/keys", issuer=ISSUER, audience=AUDIENCE, **FAST
        )
        async with verifier:
            with pytest.raises(bearer_grpc.VerifierUnavailable):
                await verifier.verify(token)
        server.routes["/keys"] = Route(key.jwks)
        again = bearer_grpc.aio.Verifier.from_jwks_url(
            f"{server.url}/keys", issuer=ISSUER, audience=AUDIENCE, **PATIENT
        )
        async with again:
            assert (await again.verify(token)).subject == "svc"

    asyncio.run(main())
