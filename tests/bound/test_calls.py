"""Certificate binding beyond the matrix: unknown methods, the ``context.read()`` /
``context.write()`` style, public methods, and the order of the checks (the token, then
its scopes, then its binding)."""

from __future__ import annotations

import grpc

from tests.bound._pki import Pki
from tests.bound._servers import Server, Tokens, answer, bound_path
from tests.interceptors.support import SCOPE, assert_refused, bearer, call, challenge, refusal

REASON = "TOKEN_BINDING_MISMATCH"


def test_unknown_methods_check_the_binding_before_answering_unimplemented(
    server: Server, tokens: Tokens, pki: Pki
) -> None:
    token = bearer(tokens.bound_to(pki.clients["alice"]))
    nope = "/test.v1.Echo/Nope"
    for attempt in ("miss", "hit"):  # verified in the handler, then from the cache
        error = refusal(lambda: call(server.channels["mallory"], "unary_unary", nope, token))
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED, attempt
        assert_refused(error, error.code(), REASON, challenge("token bound to another certificate"))
        error = refusal(lambda: call(server.channels["alice"], "unary_unary", nope, token))
        assert error.code() is grpc.StatusCode.UNIMPLEMENTED, attempt
    unbound = bearer(tokens.token())
    error = refusal(lambda: call(server.channels["plaintext"], "unary_unary", nope, unbound))
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED
    bound_nope = bound_path("Nope")
    error = refusal(lambda: call(server.channels["alice"], "unary_unary", bound_nope, unbound))
    assert error.details() == "certificate-bound token required"


def test_the_read_write_style_checks_the_binding(server: Server, tokens: Tokens, pki: Pki) -> None:
    token = bearer(tokens.bound_to(pki.clients["alice"]))
    method = "/test.v1.Echo/BidiReadWrite"
    assert call(server.channels["alice"], "stream_stream", method, token) == answer("stream_stream")
    error = refusal(lambda: call(server.channels["mallory"], "stream_stream", method, token))
    assert error.details() == "token bound to another certificate"
    assert server.calls.count == 1


def test_public_methods_look_at_no_token(server: Server, tokens: Tokens, pki: Pki) -> None:
    token = bearer(tokens.bound_to(pki.clients["alice"]))
    said = call(server.channels["plaintext"], "unary_unary", "/test.v1.Echo/Public", token)
    assert said == b"public:nobody"


def test_an_invalid_bound_token_is_refused_for_what_it_is(
    server: Server, tokens: Tokens, pki: Pki
) -> None:
    expired = bearer(tokens.token({"x5t#S256": pki.clients["alice"].x5t}, age=3600))
    error = refusal(
        lambda: call(server.channels["plaintext"], "unary_unary", "/test.v1.Echo/Unary", expired)
    )
    assert_refused(
        error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED", challenge("token expired")
    )


def test_scopes_are_checked_before_the_binding(server: Server, tokens: Tokens, pki: Pki) -> None:
    token = bearer(tokens.bound_to(pki.clients["alice"], scopes=("other.scope",)))
    unary = "/test.v1.Echo/Unary"
    for attempt in ("miss", "hit"):
        error = refusal(lambda: call(server.channels["plaintext"], "unary_unary", unary, token))
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED, attempt
        scopes = f'Bearer error="insufficient_scope", scope="{SCOPE}"'
        assert_refused(error, error.code(), "INSUFFICIENT_SCOPE", scopes)
    assert server.calls.count == 0
