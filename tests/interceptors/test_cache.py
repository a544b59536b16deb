"""The verified-token cache on the call path: one signature check per token.

A reused token is answered from the cache in ``intercept_service``: no signature check,
and still refused once its ``jti`` is revoked.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tests.interceptors.echo import path
from tests.interceptors.support import (
    Server,
    Tokens,
    assert_refused,
    bearer,
    call,
    challenge,
    refusal,
)


@pytest.fixture
def signature_checks(server: Server, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Tokens passed to the server's full verification (LocalVerification.verify)."""
    local = server.verifier.local
    verify = local.verify
    seen: list[str] = []

    def counting(token: str) -> Any:
        seen.append(token)
        return verify(token)

    monkeypatch.setattr(local, "verify", counting)
    return seen


@pytest.mark.parametrize("kind", ["unary_unary", "stream_stream"])
def test_second_call_does_no_signature_check(
    kind: str, server: Server, tokens: Tokens, signature_checks: list[str]
) -> None:
    token = tokens.issue()
    method = path("Unary" if kind == "unary_unary" else "BidiStream")

    call(server.channel, kind, method, bearer(token))
    call(server.channel, kind, method, bearer(token))

    assert signature_checks == [token.token]
    assert server.calls.count == 2


def test_cached_token_is_refused_once_revoked(
    server: Server, tokens: Tokens, signature_checks: list[str]
) -> None:
    token = tokens.issue()
    unary = server.channel.unary_unary(path("Unary"))
    assert unary(b"hi", metadata=bearer(token), timeout=10) == b"alice|echo.use"

    server.revoke(token)
    error = refusal(lambda: unary(b"hi", metadata=bearer(token), timeout=10))

    assert_refused(
        error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED", challenge("token revoked")
    )
    assert signature_checks == [token.token]
    assert server.calls.count == 1


def test_cached_token_still_needs_the_scope(
    server: Server, tokens: Tokens, signature_checks: list[str]
) -> None:
    token = tokens.issue()
    call(server.channel, "unary_unary", path("Unary"), bearer(token))

    error = refusal(lambda: call(server.channel, "unary_unary", path("Admin"), bearer(token)))

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert signature_checks == [token.token]


def test_reused_handlers_never_carry_another_callers_principal(
    server: Server, tokens: Tokens
) -> None:
    # The interceptor reuses the handler it built for the last cached caller of a
    # method; alternating callers must each still see themselves.
    plain, wider = tokens.issue(), tokens.issue(scopes=["echo.use", "echo.extra"])
    unary = server.channel.unary_unary(path("Unary"))
    seen = [
        unary(b"hi", metadata=bearer(token), timeout=10)
        for token in (plain, plain, wider, wider, plain, wider)
    ]
    assert seen == [b"alice|echo.use"] * 2 + [b"alice|echo.extra echo.use"] * 2 + [
        b"alice|echo.use",
        b"alice|echo.extra echo.use",
    ]


def test_a_reused_handler_still_checks_revocation(server: Server, tokens: Tokens) -> None:
    token = tokens.issue()
    unary = server.channel.unary_unary(path("Unary"))
    for _ in range(2):
        assert unary(b"hi", metadata=bearer(token), timeout=10) == b"alice|echo.use"
    server.revoke(token)
    error = refusal(lambda: unary(b"hi", metadata=bearer(token), timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert server.calls.count == 2
