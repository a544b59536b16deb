"""The verified-token cache on the call path: one signature check per token.

A reused token is answered from the cache in ``intercept_service``: no signature check,
and still refused once its ``jti`` is revoked.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from bearer_grpc.testing import Kind, TestIssuer, bearer, call, path
from tests.harness import ECHO_SCOPE, Protected, assert_challenged, challenge, refusal
from tests.interceptors.support import ALICE, alice, who


@pytest.fixture
def signature_checks(server: Protected, monkeypatch: pytest.MonkeyPatch) -> list[str]:
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
    kind: Kind, server: Protected, issuer: TestIssuer, signature_checks: list[str]
) -> None:
    token = alice(issuer)

    call(server.channel, kind, metadata=bearer(token))
    call(server.channel, kind, metadata=bearer(token))

    assert signature_checks == [token.token]
    assert server.echo.calls == 2


def test_cached_token_is_refused_once_revoked(
    server: Protected, issuer: TestIssuer, signature_checks: list[str]
) -> None:
    token = alice(issuer)
    unary = server.channel.unary_unary(path("Unary"))
    assert who(unary(b"hi", metadata=bearer(token), timeout=10)) == ALICE

    server.revoke(token)
    error = refusal(lambda: unary(b"hi", metadata=bearer(token), timeout=10))

    assert_challenged(
        error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED", challenge("token revoked")
    )
    assert signature_checks == [token.token]
    assert server.echo.calls == 1


def test_cached_token_still_needs_the_scope(
    server: Protected, issuer: TestIssuer, signature_checks: list[str]
) -> None:
    token = alice(issuer)
    call(server.channel, "unary_unary", metadata=bearer(token))

    error = refusal(
        lambda: call(server.channel, "unary_unary", method="Admin", metadata=bearer(token))
    )

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert signature_checks == [token.token]


def test_reused_handlers_never_carry_another_callers_principal(
    server: Protected, issuer: TestIssuer
) -> None:
    # The interceptor reuses the handler it built for the last cached caller of a
    # method; alternating callers must each still see themselves.
    plain, wider = alice(issuer), alice(issuer, scopes=[ECHO_SCOPE, "echo.extra"])
    unary = server.channel.unary_unary(path("Unary"))
    seen = [
        who(unary(b"hi", metadata=bearer(token), timeout=10))
        for token in (plain, plain, wider, wider, plain, wider)
    ]
    wide = ("alice", ("echo.extra", ECHO_SCOPE))
    assert seen == [ALICE, ALICE, wide, wide, ALICE, wide]


def test_a_reused_handler_still_checks_revocation(server: Protected, issuer: TestIssuer) -> None:
    token = alice(issuer)
    unary = server.channel.unary_unary(path("Unary"))
    for _ in range(2):
        assert who(unary(b"hi", metadata=bearer(token), timeout=10)) == ALICE
    server.revoke(token)
    error = refusal(lambda: unary(b"hi", metadata=bearer(token), timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert server.echo.calls == 2
