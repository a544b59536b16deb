"""Certificate binding beyond the matrix: unknown methods, the ``context.read()`` /
``context.write()`` style, public methods, the order of the checks (the token, then its
scopes, then its binding), and verifiers other than ``Verifier.from_jwks``."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import grpc
import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc import Principal, TokenInvalid
from bearer_grpc.core.keys import SigningKey
from bearer_grpc.testing import LoopThread, bearer, path
from tests.bound._servers import REASON, Server, Tokens, answer, ask, bound_path, running
from tests.harness import ECHO_SCOPE, Pki, assert_challenged, challenge, refusal


def test_unknown_methods_check_the_binding_before_answering_unimplemented(
    server: Server, tokens: Tokens, pki: Pki
) -> None:
    token = bearer(tokens.bound_to(pki.clients["alice"]))
    nope = path("Nope")
    for attempt in ("miss", "hit"):  # verified in the handler, then from the cache
        error = refusal(lambda: ask(server.channels["mallory"], "unary_unary", nope, token))
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED, attempt
        assert_challenged(
            error, error.code(), REASON, challenge("token bound to another certificate")
        )
        error = refusal(lambda: ask(server.channels["alice"], "unary_unary", nope, token))
        assert error.code() is grpc.StatusCode.UNIMPLEMENTED, attempt
    unbound = bearer(tokens.token())
    error = refusal(lambda: ask(server.channels["plaintext"], "unary_unary", nope, unbound))
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED
    bound_nope = bound_path("Nope")
    error = refusal(lambda: ask(server.channels["alice"], "unary_unary", bound_nope, unbound))
    assert error.details() == "certificate-bound token required"


def test_the_read_write_style_checks_the_binding(server: Server, tokens: Tokens, pki: Pki) -> None:
    token = bearer(tokens.bound_to(pki.clients["alice"]))
    method = path("BidiReadWrite")
    assert ask(server.channels["alice"], "stream_stream", method, token) == answer("stream_stream")
    error = refusal(lambda: ask(server.channels["mallory"], "stream_stream", method, token))
    assert error.details() == "token bound to another certificate"
    assert server.echo.calls == 1


def test_public_methods_look_at_no_token(server: Server, tokens: Tokens, pki: Pki) -> None:
    token = bearer(tokens.bound_to(pki.clients["alice"]))
    said = ask(server.channels["plaintext"], "unary_unary", path("Public"), token)
    assert said == answer("unary_unary", None, ())


def test_an_invalid_bound_token_is_refused_for_what_it_is(
    server: Server, tokens: Tokens, pki: Pki
) -> None:
    expired = bearer(tokens.token({"x5t#S256": pki.clients["alice"].x5t}, age=3600))
    error = refusal(
        lambda: ask(server.channels["plaintext"], "unary_unary", path("Unary"), expired)
    )
    assert_challenged(
        error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED", challenge("token expired")
    )


def test_scopes_are_checked_before_the_binding(server: Server, tokens: Tokens, pki: Pki) -> None:
    token = bearer(tokens.bound_to(pki.clients["alice"], scopes=("other.scope",)))
    unary = path("Unary")
    for attempt in ("miss", "hit"):
        error = refusal(lambda: ask(server.channels["plaintext"], "unary_unary", unary, token))
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED, attempt
        scopes = f'Bearer error="insufficient_scope", scope="{ECHO_SCOPE}"'
        assert_challenged(error, error.code(), "INSUFFICIENT_SCOPE", scopes)
    assert server.echo.calls == 0


class _OpaqueVerifier:
    """A verifier of the application's own: one opaque token, bound to alice."""

    def __init__(self, x5t: str) -> None:
        self.principal = Principal(
            subject="opaque", claims=MappingProxyType({"cnf": {"x5t#S256": x5t}})
        )

    def verify(self, token: str) -> Principal:
        if token != "opaque-token":
            raise TokenInvalid()
        return self.principal


class _AsyncOpaqueVerifier(_OpaqueVerifier):
    async def verify(self, token: str) -> Principal:  # type: ignore[override]
        return super().verify(token)


def _any_of(flavour: str, tokens: Tokens) -> object:
    """``any_of`` over another issuer and the one the tokens come from."""
    module: Any = bearer_grpc if flavour == "sync" else bearer_grpc.aio
    stranger = module.Verifier.from_jwks(
        {"keys": [dict(SigningKey.generate().jwk)]}, issuer="https://other.test", audience="x"
    )
    return module.Verifier.any_of(stranger, tokens.verifier(flavour))


@pytest.mark.parametrize("verifier", ["custom", "any_of"])
@pytest.mark.parametrize("flavour", ["sync", "aio"])
def test_any_verifiers_binding_is_enforced(
    flavour: str, verifier: str, tokens: Tokens, pki: Pki, loop: LoopThread
) -> None:
    """``cnf`` is read from ``Principal.claims``, whichever verifier made it."""
    alice = pki.clients["alice"]
    if verifier == "custom":
        chosen: Any = (_OpaqueVerifier if flavour == "sync" else _AsyncOpaqueVerifier)(alice.x5t)
        token = bearer("opaque-token")
    else:
        chosen, token = _any_of(flavour, tokens), bearer(tokens.bound_to(alice))
    unary = path("Unary")
    with running(flavour, chosen, pki, loop) as server:
        assert ask(server.channels["alice"], "unary_unary", unary, token)
        error = refusal(lambda: ask(server.channels["mallory"], "unary_unary", unary, token))
        assert error.details() == "token bound to another certificate"
