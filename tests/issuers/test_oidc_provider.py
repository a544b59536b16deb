"""Against a real third-party OpenID provider (oidc-provider): discovery, JWT access
tokens on all four RPC kinds (sync and aio), audience, key rotation at the provider, the
provider down, HTTPS with a test CA, and opaque tokens by introspection."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc.testing import KINDS, Echo, serve, serve_aio
from tests.issuers._support import (
    API,
    ORDERS,
    OidcProvider,
    echo_answer,
    echo_answer_on,
    make_ca,
    running_provider,
)

pytestmark = pytest.mark.process


def _refused(kind: str, target: str, token: str | None) -> grpc.RpcError:
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as caught:
        echo_answer(channel, kind, token)
    return caught.value


@pytest.mark.parametrize("kind", KINDS)
def test_sync_token_accepted(provider: OidcProvider, kind: str) -> None:
    token = provider.token()
    with bearer_grpc.Verifier.from_issuer(provider.issuer, audience=ORDERS) as verifier:
        interceptor = bearer_grpc.BearerServerInterceptor(verifier)
        with serve([Echo().handler()], interceptors=[interceptor]) as target:
            with grpc.insecure_channel(target) as channel:
                answer = echo_answer(channel, kind, token)
            assert answer == f"{provider.issuer}|svc|orders.read".encode()
            error = _refused(kind, target, provider.token(resource="https://other.test"))
            assert error.code() is grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("kind", KINDS)
def test_aio_token_accepted(provider: OidcProvider, kind: str) -> None:
    token, wrong_audience = provider.token(), provider.token(resource="https://other.test")

    async def main() -> None:
        verifier = bearer_grpc.aio.Verifier.from_issuer(provider.issuer, audience=ORDERS)
        async with verifier:
            interceptor = bearer_grpc.aio.BearerServerInterceptor(verifier)
            async with serve_aio([Echo().aio_handler()], interceptors=[interceptor]) as target:
                answer = await asyncio.to_thread(echo_answer_on, target, kind, token)
                assert answer == f"{provider.issuer}|svc|orders.read".encode()
                error = await asyncio.to_thread(_refused, kind, target, wrong_audience)
                assert error.code() is grpc.StatusCode.UNAUTHENTICATED

    asyncio.run(main())


def test_discovery_finds_the_provider_keys(provider: OidcProvider) -> None:
    with bearer_grpc.Verifier.from_issuer(provider.issuer, audience=ORDERS) as verifier:
        assert verifier.local.keys is not None and provider.kid in verifier.local.keys
        assert verifier.verify(provider.token()).issuer == provider.issuer


def test_wrong_audience_refused(provider: OidcProvider) -> None:
    token = provider.token(resource="https://other.test")
    verifier = bearer_grpc.Verifier.from_issuer(provider.issuer, audience=ORDERS)
    with verifier, pytest.raises(bearer_grpc.TokenInvalid):
        verifier.verify(token)


@pytest.fixture
def own_provider() -> Iterator[OidcProvider]:
    """A provider this test may stop and restart."""
    with running_provider() as running:
        yield running


def test_rotation_at_the_provider_refetches_the_new_key(own_provider: OidcProvider) -> None:
    with bearer_grpc.Verifier.from_issuer(own_provider.issuer, audience=ORDERS) as verifier:
        old_kid = own_provider.kid
        assert verifier.verify(own_provider.token()).subject == "svc"
        own_provider.restart()  # same issuer, a new signing key
        assert own_provider.kid != old_kid
        assert verifier.verify(own_provider.token()).subject == "svc"  # unknown kid: refetched
        assert verifier.local.keys is not None and own_provider.kid in verifier.local.keys


def test_rotation_at_the_provider_aio(own_provider: OidcProvider) -> None:
    async def main() -> None:
        verifier = bearer_grpc.aio.Verifier.from_issuer(own_provider.issuer, audience=ORDERS)
        async with verifier:
            assert (await verifier.verify(own_provider.token())).subject == "svc"
            await asyncio.to_thread(own_provider.restart)
            token = await asyncio.to_thread(own_provider.token)
            assert (await verifier.verify(token)).subject == "svc"

    asyncio.run(main())


def test_provider_down_keeps_the_last_known_good_keys(own_provider: OidcProvider) -> None:
    token = own_provider.token()
    with bearer_grpc.Verifier.from_issuer(own_provider.issuer, audience=ORDERS) as verifier:
        own_provider.stop()
        assert verifier.verify(token).subject == "svc"  # verified from memory
        assert verifier.lookup(token) is not None


def test_provider_down_before_start_fails_closed(own_provider: OidcProvider) -> None:
    token = own_provider.token()
    issuer = own_provider.issuer
    own_provider.stop()
    verifier = bearer_grpc.Verifier.from_issuer(issuer, audience=ORDERS, startup_timeout=0.5)
    with verifier, pytest.raises(bearer_grpc.VerifierUnavailable):
        verifier.verify(token)

    async def main() -> None:
        verifier = bearer_grpc.aio.Verifier.from_issuer(
            issuer, audience=ORDERS, startup_timeout=0.5
        )
        async with verifier:
            with pytest.raises(bearer_grpc.VerifierUnavailable):
                await verifier.verify(token)

    asyncio.run(main())


def test_jwks_over_https_with_a_test_ca(tmp_path: Path) -> None:
    ca, cert, key = make_ca(tmp_path)
    with running_provider(tls=(cert, key)) as https_provider:
        assert https_provider.issuer.startswith("https://localhost:")
        token = https_provider.token(verify=ssl.create_default_context(cafile=ca))
        with bearer_grpc.Verifier.from_issuer(
            https_provider.issuer, audience=ORDERS, ca_file=str(ca)
        ) as verifier:
            assert verifier.verify(token).subject == "svc"
        # the system CAs do not trust the test CA: no keys, fail closed
        with (
            bearer_grpc.Verifier.from_issuer(
                https_provider.issuer, audience=ORDERS, startup_timeout=0.5
            ) as untrusting,
            pytest.raises(bearer_grpc.VerifierUnavailable),
        ):
            untrusting.verify(token)


def _introspection(provider: OidcProvider, **kwargs: object) -> bearer_grpc.Verifier:
    return bearer_grpc.Verifier.introspection(
        f"{provider.issuer}/token/introspection",
        client_id=API[0],
        client_secret=API[1],
        audience="urn:opaque",
        issuer=provider.issuer,
        **kwargs,  # type: ignore[arg-type]
    )


def test_opaque_token_checked_by_introspection(provider: OidcProvider) -> None:
    token = provider.token(resource="urn:opaque")
    assert token.count(".") == 0  # opaque
    with _introspection(provider) as verifier:
        principal = verifier.verify(token)
        assert (principal.subject, principal.scopes) == ("svc", frozenset({"orders.read"}))
        assert verifier.lookup(token) is principal  # cached
        with pytest.raises(bearer_grpc.TokenInvalid):
            verifier.verify("not-a-token-the-provider-issued")
        # oidc-provider will not introspect its JWTs (400): not an answer, fail closed
        with pytest.raises(bearer_grpc.VerifierUnavailable):
            verifier.verify(provider.token(resource="https://other.test"))


def test_introspection_on_all_four_kinds_aio(provider: OidcProvider) -> None:
    token = provider.token(resource="urn:opaque")

    async def main() -> None:
        verifier = bearer_grpc.aio.Verifier.introspection(
            f"{provider.issuer}/token/introspection",
            client_id=API[0],
            client_secret=API[1],
            audience="urn:opaque",
        )
        interceptor = bearer_grpc.aio.BearerServerInterceptor(verifier)
        async with serve_aio([Echo().aio_handler()], interceptors=[interceptor]) as target:
            for kind in KINDS:
                answer = await asyncio.to_thread(echo_answer_on, target, kind, token)
                assert answer.endswith(b"|svc|orders.read")
        await verifier.aclose()

    asyncio.run(main())


def test_introspection_wrong_credentials_fail_closed(provider: OidcProvider) -> None:
    token = provider.token(resource="urn:opaque")
    verifier = bearer_grpc.Verifier.introspection(
        f"{provider.issuer}/token/introspection",
        client_id=API[0],
        client_secret="wrong-secret",
        audience="urn:opaque",
    )
    with verifier, pytest.raises(bearer_grpc.VerifierUnavailable):
        verifier.verify(token)


def test_introspection_unreachable_fails_closed(own_provider: OidcProvider) -> None:
    token = own_provider.token(resource="urn:opaque")
    own_provider.stop()
    with _introspection(own_provider) as verifier, pytest.raises(bearer_grpc.VerifierUnavailable):
        verifier.verify(token)
