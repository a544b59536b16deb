"""Certificate-bound tokens on every RPC kind of both flavours, over real mutual TLS.

Ids read ``test_matrix[<flavour>-<kind>-<case>]``. A refused call carries
UNAUTHENTICATED, the ErrorInfo reason ``TOKEN_BINDING_MISMATCH`` and an
``invalid_token`` challenge, and never reaches the handler; an accepted one reaches it
with the caller bound (the handler answers what ``current_principal()`` says).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest

from bearer_grpc.testing import KINDS, METHODS, bearer, path
from tests.bound._servers import REASON, Server, Tokens, answer, ask, bound_path
from tests.harness import Pki, assert_challenged, challenge, refusal


@dataclass(frozen=True)
class Case:
    """A token, the channel it is sent on, the method, and the refusal's message (None:
    the call is accepted)."""

    channel: str
    token: Callable[[Tokens, Pki], str]
    message: str | None = None
    bound_method: bool = False


def _alices(tokens: Tokens, pki: Pki) -> str:
    return tokens.bound_to(pki.clients["alice"])


def _unbound(tokens: Tokens, pki: Pki) -> str:
    return tokens.token()


def _hex_thumbprint(tokens: Tokens, pki: Pki) -> str:
    # the common mistake: hex instead of base64url
    return tokens.token({"x5t#S256": hashlib.sha256(pki.clients["alice"].der).hexdigest()})


def _dpop(tokens: Tokens, pki: Pki) -> str:
    return tokens.token({"jkt": pki.clients["alice"].x5t})


def _two_constraints(tokens: Tokens, pki: Pki) -> str:
    alice = pki.clients["alice"].x5t
    return tokens.token({"x5t#S256": alice, "jkt": alice})


MISMATCH = "token bound to another certificate"
NO_CERTIFICATE = "client certificate required"
UNSUPPORTED = "unsupported token confirmation"

CASES = {
    "bound_with_its_certificate": Case("alice", _alices),
    "bound_with_its_certificate_on_a_bound_method": Case("alice", _alices, bound_method=True),
    "unbound_ok": Case("alice", _unbound),
    "unbound_over_plaintext_ok": Case("plaintext", _unbound),
    "bound_over_plaintext": Case("plaintext", _alices, NO_CERTIFICATE),
    "bound_over_tls_without_client_certificate": Case("tls", _alices, NO_CERTIFICATE),
    "bound_with_another_clients_certificate": Case("mallory", _alices, MISMATCH),
    "unbound_on_a_bound_method": Case(
        "alice", _unbound, "certificate-bound token required", bound_method=True
    ),
    "malformed_cnf_hex_thumbprint": Case("alice", _hex_thumbprint, UNSUPPORTED),
    "dpop_cnf_jkt": Case("alice", _dpop, UNSUPPORTED),
    "cnf_with_a_second_constraint": Case("alice", _two_constraints, UNSUPPORTED),
}

MATRIX = list(itertools.product(["sync", "aio"], KINDS, CASES))


@pytest.mark.parametrize(("flavour", "kind", "case"), MATRIX, ids=["-".join(m) for m in MATRIX])
def test_matrix(
    flavour: str, kind: str, case: str, tokens: Tokens, pki: Pki, request: pytest.FixtureRequest
) -> None:
    server: Server = request.getfixturevalue(f"{flavour}_server")
    server.echo.reset()
    expected = CASES[case]
    name = METHODS[kind]
    method = bound_path(name) if expected.bound_method else path(name)
    channel = server.channels[expected.channel]
    metadata = bearer(expected.token(tokens, pki))

    if expected.message is None:
        assert ask(channel, kind, method, metadata) == answer(kind)
        assert server.echo.calls == 1
        return

    error = refusal(lambda: ask(channel, kind, method, metadata))
    assert_challenged(error, grpc.StatusCode.UNAUTHENTICATED, REASON, challenge(expected.message))
    assert error.details() == expected.message
    assert server.echo.calls == 0, "the handler ran for a refused call"


@pytest.mark.parametrize("kind", KINDS)
def test_a_cached_bound_token_replayed_on_other_channels_is_refused(
    server: Server, kind: str, tokens: Tokens, pki: Pki
) -> None:
    token = bearer(_alices(tokens, pki))
    method = path(METHODS[kind])
    assert ask(server.channels["alice"], kind, method, token) == answer(kind)
    assert server.verifier.lookup(token[0][1].removeprefix("Bearer ")) is not None  # cached
    for thief in ("mallory", "plaintext", "tls"):
        error = refusal(lambda: ask(server.channels[thief], kind, method, token))  # noqa: B023
        assert_challenged(
            error, grpc.StatusCode.UNAUTHENTICATED, REASON, challenge(error.details() or "")
        )
    assert server.echo.calls == 1
    assert ask(server.channels["alice"], kind, method, token) == answer(kind)
    assert server.echo.calls == 2
