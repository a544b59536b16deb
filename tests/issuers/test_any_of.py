"""Several issuers behind one interceptor: Verifier.any_of routes by the unverified
``iss`` to the one verifier of that issuer, before any crypto, and never fetches for an
issuer it does not know."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc import TokenProfile
from bearer_grpc.testing import KINDS, SERVICE, Echo, TestIssuer, serve, serve_aio
from tests.issuers._support import LocalServer, Route, VendorKey, echo_answer_on

IDP = "https://idp.example"


def idp_token(key: VendorKey, **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": IDP, "sub": "partner", "aud": "orders", "iat": now, "exp": now + 300,
              "scp": ["orders.read"], "cid": "partner", "jti": "AT.1"}  # fmt: skip
    return key.sign({**claims, **changes}, typ=None)


@pytest.mark.slow
def test_routes_by_issuer_on_all_four_kinds(server: LocalServer) -> None:
    ours, key = TestIssuer(), VendorKey()
    server.routes["/keys"] = Route(key.jwks)
    local = ours.verifier(audience="orders")
    remote = bearer_grpc.Verifier.from_jwks_url(
        f"{server.url}/keys", issuer=IDP, audience="orders", profile=TokenProfile.okta()
    )
    policy = bearer_grpc.Policy(scopes={f"/{SERVICE}/*": ["orders.read"]})
    with bearer_grpc.Verifier.any_of(local, remote) as both:
        interceptor = bearer_grpc.BearerServerInterceptor(both, policy)
        with serve([Echo().handler()], interceptors=[interceptor]) as target:
            for kind in KINDS:
                mine = ours.token(subject="svc", scopes=["orders.read"], audience="orders")
                assert echo_answer_on(target, kind, mine).startswith(f"{ours.issuer}|svc|".encode())
                answer = echo_answer_on(target, kind, idp_token(key))
                assert answer == f"{IDP}|partner|orders.read".encode()


def test_unknown_issuer_is_invalid_and_fetches_nothing(server: LocalServer) -> None:
    key = VendorKey()
    server.routes["/keys"] = Route(key.jwks)
    remote = bearer_grpc.Verifier.from_jwks_url(
        f"{server.url}/keys", issuer=IDP, audience="orders", profile=TokenProfile.okta()
    )
    with bearer_grpc.Verifier.any_of(remote, TestIssuer().verifier(audience="orders")) as both:
        before = list(server.requests)
        for token in (
            idp_token(key, iss=f"{server.url}/keys"),
            idp_token(VendorKey("other"), iss="https://stranger.example", jku=f"{server.url}/x"),
        ):
            with pytest.raises(bearer_grpc.TokenInvalid):
                both.verify(token)
        with pytest.raises(bearer_grpc.TokenMalformed):
            both.verify("opaque-token")
        assert server.requests == before  # nothing fetched for a token's say-so


def test_construction_errors() -> None:
    issuer = TestIssuer()
    with pytest.raises(ValueError, match="two verifiers"):
        bearer_grpc.Verifier.any_of(issuer.verifier(), issuer.verifier())
    with pytest.raises(ValueError):
        bearer_grpc.Verifier.any_of()


def test_aio_routes_by_issuer(server: LocalServer) -> None:
    ours, key = TestIssuer(), VendorKey()
    server.routes["/keys"] = Route(key.jwks)

    async def main() -> None:
        local = ours.aio_verifier(audience="orders")
        remote = bearer_grpc.aio.Verifier.from_jwks_url(
            f"{server.url}/keys", issuer=IDP, audience="orders", profile=TokenProfile.okta()
        )
        async with bearer_grpc.aio.Verifier.any_of(local, remote) as both:
            interceptor = bearer_grpc.aio.BearerServerInterceptor(both)
            async with serve_aio([Echo().aio_handler()], interceptors=[interceptor]) as target:
                for kind in KINDS:
                    answer = await asyncio.to_thread(echo_answer_on, target, kind, idp_token(key))
                    assert answer == f"{IDP}|partner|orders.read".encode()
                    mine = ours.token(subject="svc", audience="orders")
                    answer = await asyncio.to_thread(echo_answer_on, target, kind, mine)
                    assert answer.startswith(f"{ours.issuer}|svc|".encode())
                error = await asyncio.to_thread(_refused, target, idp_token(key, iss="https://x"))
                assert error.code() is grpc.StatusCode.UNAUTHENTICATED

    asyncio.run(main())


def _refused(target: str, token: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        echo_answer_on(target, "unary_unary", token)
    return caught.value
