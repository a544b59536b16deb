"""Every RPC kind on both flavours, against every kind of credential (the error contract).

Ids read ``test_matrix[<flavour>-<kind>-<case>]``. A refused call must carry the code,
the ``ErrorInfo`` reason and the ``www-authenticate`` challenge, and must never reach the
handler; an accepted one must reach it with the caller bound.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest

from tests.interceptors.echo import KIND_METHODS, path
from tests.interceptors.support import (
    SCOPE,
    Server,
    Tokens,
    assert_refused,
    bearer,
    call,
    challenge,
    refusal,
)

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Case:
    """One kind of credential, how to make it, and how the server must answer."""

    metadata: Callable[[Tokens, Server], Metadata]
    code: grpc.StatusCode = grpc.StatusCode.UNAUTHENTICATED
    reason: str = ""
    challenge: str = ""


def _revoked(tokens: Tokens, server: Server) -> Metadata:
    token = tokens.issue()
    server.revoke(token)
    return bearer(token)


CASES = {
    "no_token": Case(lambda t, s: (), reason="TOKEN_MISSING", challenge="Bearer"),
    "malformed": Case(
        lambda t, s: (("authorization", "Bearer not a token!"),),
        reason="TOKEN_MALFORMED",
        challenge='Bearer error="invalid_request", error_description="malformed bearer token"',
    ),
    "bad_signature": Case(
        lambda t, s: bearer(t.forged()),
        reason="TOKEN_INVALID",
        challenge=challenge("invalid token"),
    ),
    "expired": Case(
        lambda t, s: bearer(t.issue(lifetime=300, age=3600)),
        reason="TOKEN_EXPIRED",
        challenge=challenge("token expired"),
    ),
    "revoked": Case(_revoked, reason="TOKEN_REVOKED", challenge=challenge("token revoked")),
    "wrong_audience": Case(
        lambda t, s: bearer(t.issue(audience="billing")),
        reason="TOKEN_INVALID",
        challenge=challenge("invalid token"),
    ),
    "insufficient_scope": Case(
        lambda t, s: bearer(t.issue(scopes=["other.scope"])),
        code=grpc.StatusCode.PERMISSION_DENIED,
        reason="INSUFFICIENT_SCOPE",
        challenge=f'Bearer error="insufficient_scope", scope="{SCOPE}"',
    ),
    "ok": Case(lambda t, s: bearer(t.issue()), code=grpc.StatusCode.OK),
}

EXPECTED_OK = {
    "unary_unary": b"alice|echo.use",
    "unary_stream": [b"alice|echo.use", b"alice|echo.use"],
    "stream_unary": b"alice|echo.use|a,b",
    "stream_stream": [b"alice|echo.use|a", b"alice|echo.use|b"],
}

MATRIX = list(itertools.product(["sync", "aio"], KIND_METHODS, CASES))


@pytest.mark.parametrize(("flavour", "kind", "case"), MATRIX, ids=["-".join(m) for m in MATRIX])
def test_matrix(
    flavour: str, kind: str, case: str, tokens: Tokens, request: pytest.FixtureRequest
) -> None:
    server: Server = request.getfixturevalue(f"{flavour}_server")
    server.calls.reset()
    expected = CASES[case]
    metadata = expected.metadata(tokens, server)
    method = path(KIND_METHODS[kind])

    if expected.code is grpc.StatusCode.OK:
        assert call(server.channel, kind, method, metadata) == EXPECTED_OK[kind]
        assert server.calls.count == 1
        return

    error = refusal(lambda: call(server.channel, kind, method, metadata))
    assert_refused(
        error,
        expected.code,
        expected.reason,
        expected.challenge,
        required_scopes=SCOPE if case == "insufficient_scope" else None,
    )
    assert server.calls.count == 0, "the handler ran for a refused call"
