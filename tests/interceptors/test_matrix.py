"""Every RPC kind on both flavours, against every kind of credential.

Ids read ``test_matrix[<flavour>-<kind>-<case>]``. A refused call must carry the code,
the ``ErrorInfo`` reason (``UNAUTHENTICATED`` for no valid credentials,
``PERMISSION_DENIED`` for a known caller lacking the scope) and the ``www-authenticate``
challenge, and must never reach the handler; an accepted one must reach it with the
caller bound.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest

from bearer_grpc.testing import KINDS, Kind, TestIssuer, bearer, call
from tests.harness import ECHO_SCOPE, Protected, assert_challenged, challenge, refusal
from tests.interceptors.support import ALICE, alice

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Case:
    """One kind of credential, how to make it, and how the server must answer."""

    metadata: Callable[[TestIssuer, Protected], Metadata]
    code: grpc.StatusCode = grpc.StatusCode.UNAUTHENTICATED
    reason: str = ""
    challenge: str = ""


def _revoked(issuer: TestIssuer, server: Protected) -> Metadata:
    token = alice(issuer)
    server.revoke(token)
    return bearer(token)


CASES = {
    "no_token": Case(lambda i, s: (), reason="TOKEN_MISSING", challenge="Bearer"),
    "malformed": Case(
        lambda i, s: (("authorization", "Bearer not a token!"),),
        reason="TOKEN_MALFORMED",
        challenge='Bearer error="invalid_request", error_description="malformed bearer token"',
    ),
    "bad_signature": Case(
        lambda i, s: bearer(alice(i.impostor())),
        reason="TOKEN_INVALID",
        challenge=challenge("invalid token"),
    ),
    "expired": Case(
        lambda i, s: bearer(alice(i, lifetime=300, age=3600)),
        reason="TOKEN_EXPIRED",
        challenge=challenge("token expired"),
    ),
    "revoked": Case(_revoked, reason="TOKEN_REVOKED", challenge=challenge("token revoked")),
    "wrong_audience": Case(
        lambda i, s: bearer(alice(i, audience="billing")),
        reason="TOKEN_INVALID",
        challenge=challenge("invalid token"),
    ),
    "insufficient_scope": Case(
        lambda i, s: bearer(alice(i, scopes=["other.scope"])),
        code=grpc.StatusCode.PERMISSION_DENIED,
        reason="INSUFFICIENT_SCOPE",
        challenge=f'Bearer error="insufficient_scope", scope="{ECHO_SCOPE}"',
    ),
    "ok": Case(lambda i, s: bearer(alice(i)), code=grpc.StatusCode.OK),
}

EXPECTED_REQUESTS: dict[Kind, list[tuple[bytes, ...]]] = {
    "unary_unary": [(b"a",)],
    "unary_stream": [(b"a",), (b"a",)],
    "stream_unary": [(b"a", b"b")],
    "stream_stream": [(b"a",), (b"b",)],
}

MATRIX = list(itertools.product(["sync", "aio"], KINDS, CASES))


@pytest.mark.parametrize(("flavour", "kind", "case"), MATRIX, ids=["-".join(m) for m in MATRIX])
def test_matrix(
    flavour: str, kind: Kind, case: str, issuer: TestIssuer, request: pytest.FixtureRequest
) -> None:
    server: Protected = request.getfixturevalue(f"{flavour}_server")
    server.echo.reset()
    expected = CASES[case]
    metadata = expected.metadata(issuer, server)

    if expected.code is grpc.StatusCode.OK:
        answers = call(server.channel, kind, metadata=metadata)
        assert [answer.requests for answer in answers] == EXPECTED_REQUESTS[kind]
        assert {(answer.subject, answer.scopes) for answer in answers} == {ALICE}
        assert server.echo.calls == 1
        return

    error = refusal(lambda: call(server.channel, kind, metadata=metadata))
    assert_challenged(
        error,
        expected.code,
        expected.reason,
        expected.challenge,
        required_scopes=ECHO_SCOPE if case == "insufficient_scope" else None,
    )
    assert server.echo.calls == 0, "the handler ran for a refused call"
