"""Behind a TLS-terminating proxy: the certificate from a trusted header, and only when
the interceptor is told to trust it.

The test client stands in for the proxy and sends the header itself: the server cannot
tell the difference, which is why the header must be trusted only where a proxy sets
it. ``proxy`` is the proxy's own client certificate, for the mutual-TLS hop between it
and the server.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Iterator
from urllib.parse import quote

import grpc
import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc.core.client_cert import CLIENT_CERT, XFCC
from bearer_grpc.testing import KINDS, METHODS, LoopThread, bearer, path
from tests.bound._servers import (
    REASON,
    Server,
    Tokens,
    answer,
    ask,
    bound_policy,
    running,
)
from tests.harness import Identity, Pki, assert_challenged, challenge, refusal

FLAVOURS = ("sync", "aio")
HEADERS = (XFCC, CLIENT_CERT)
Metadata = tuple[tuple[str, str], ...]


def header_value(header: str, client: Identity) -> str:
    """What a proxy puts in ``header`` for a connection with ``client``'s certificate."""
    if header == XFCC:
        digest = hashlib.sha256(client.der).hexdigest()
        cert = quote(client.cert_pem.decode(), safe="")
        return f'By=spiffe://bound.test/server;Hash={digest};Cert="{cert}";Subject="CN=a,O=b"'
    return f":{base64.b64encode(client.der).decode()}:"


def with_header(token: str, header: str, client: Identity) -> Metadata:
    """``token`` and the proxy's header naming ``client``."""
    return (*bearer(token), (header, header_value(header, client)))


@pytest.fixture(scope="module", params=list(itertools.product(FLAVOURS, HEADERS)), ids="-".join)
def proxied(
    request: pytest.FixtureRequest, tokens: Tokens, pki: Pki, loop: LoopThread
) -> Iterator[tuple[Server, str]]:
    """A server (each flavour) trusting each header in turn, and the header."""
    flavour, header = request.param
    verifier = tokens.verifier(flavour)
    policy = bound_policy()
    with running(flavour, verifier, pki, loop, policy, trusted_certificate_header=header) as server:
        yield server, header


@pytest.mark.parametrize("kind", KINDS)
def test_the_trusted_header_names_the_certificate(
    proxied: tuple[Server, str], kind: str, tokens: Tokens, pki: Pki
) -> None:
    server, header = proxied
    alice = pki.clients["alice"]
    method = path(METHODS[kind])
    metadata = with_header(tokens.bound_to(alice), header, alice)
    for hop in ("plaintext", "proxy"):  # the proxy reaches the server in plaintext or mTLS
        assert ask(server.channels[hop], kind, method, metadata) == answer(kind)


@pytest.mark.parametrize("kind", KINDS)
def test_a_header_naming_another_certificate_is_refused(
    proxied: tuple[Server, str], kind: str, tokens: Tokens, pki: Pki
) -> None:
    server, header = proxied
    server.echo.reset()
    metadata = with_header(tokens.bound_to(pki.clients["alice"]), header, pki.clients["mallory"])
    error = refusal(lambda: ask(server.channels["plaintext"], kind, path("Unary"), metadata))
    message = "token bound to another certificate"
    assert_challenged(error, grpc.StatusCode.UNAUTHENTICATED, REASON, challenge(message))
    assert server.echo.calls == 0


@pytest.mark.parametrize("kind", KINDS)
def test_the_connections_own_certificate_is_never_used(
    proxied: tuple[Server, str], kind: str, tokens: Tokens, pki: Pki
) -> None:
    server, header = proxied
    alice, proxy = pki.clients["alice"], pki.clients["proxy"]
    method = path(METHODS[kind])
    # alice connects directly with her certificate, and no header: nothing to trust
    error = refusal(
        lambda: ask(server.channels["alice"], kind, method, bearer(tokens.bound_to(alice)))
    )
    assert error.details() == "client certificate required"
    # a token bound to the proxy's connection certificate is checked against the header
    metadata = with_header(tokens.bound_to(proxy), header, alice)
    error = refusal(lambda: ask(server.channels["proxy"], kind, method, metadata))
    assert error.details() == "token bound to another certificate"


def test_several_header_entries_name_no_certificate(
    proxied: tuple[Server, str], tokens: Tokens, pki: Pki
) -> None:
    server, header = proxied
    alice = pki.clients["alice"]
    metadata = (
        *with_header(tokens.bound_to(alice), header, alice),
        (header, header_value(header, alice)),
    )
    error = refusal(
        lambda: ask(server.channels["plaintext"], "unary_unary", path("Unary"), metadata)
    )
    assert error.details() == "client certificate required"


def test_an_unbound_token_is_not_affected_by_the_header(
    proxied: tuple[Server, str], tokens: Tokens
) -> None:
    server, header = proxied
    for value in ("", "garbage;;", ":not base64:"):
        metadata = (*bearer(tokens.token()), (header, value))
        assert ask(server.channels["plaintext"], "unary_unary", path("Unary"), metadata)
        assert server.echo.calls == 1
        server.echo.reset()


@pytest.mark.parametrize(("kind", "header"), list(itertools.product(KINDS, HEADERS)))
def test_a_client_sent_header_is_ignored_when_not_trusted(
    server: Server, kind: str, header: str, tokens: Tokens, pki: Pki
) -> None:
    alice = pki.clients["alice"]
    method = path(METHODS[kind])
    metadata = with_header(tokens.bound_to(alice), header, alice)
    error = refusal(lambda: ask(server.channels["plaintext"], kind, method, metadata))
    assert_challenged(
        error, grpc.StatusCode.UNAUTHENTICATED, REASON, challenge("client certificate required")
    )
    error = refusal(lambda: ask(server.channels["mallory"], kind, method, metadata))
    assert error.details() == "token bound to another certificate"
    assert server.echo.calls == 0


@pytest.mark.parametrize(
    "header", ["x-ssl-client-cert", "X-Forwarded-Client-Cert", "authorization", ""]
)
@pytest.mark.parametrize(
    "interceptor", [bearer_grpc.BearerServerInterceptor, bearer_grpc.aio.BearerServerInterceptor]
)
def test_only_the_two_known_headers_can_be_trusted(header: str, interceptor: type) -> None:
    verifier = object()
    with pytest.raises(ValueError, match="trusted_certificate_header"):
        interceptor(verifier, trusted_certificate_header=header)
