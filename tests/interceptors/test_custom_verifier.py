"""A verifier of the application's own behind both interceptors, for all four RPC kinds.

The interceptors take any object with ``verify(token) -> Principal`` (``async def`` on
``grpc.aio``); ``lookup`` and ``recheck`` are optional. The verifier here knows opaque
tokens from a table, as a service with its own session store would; it counts what it is
asked, so the tests can tell which path the interceptor took.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from bearer_grpc import AuthError, Principal, TokenInvalid, TokenRevoked, VerifierUnavailable
from bearer_grpc.testing import KINDS, Echo, Kind, LoopThread, assert_refused, bearer, call, path
from tests.harness import (
    ECHO_METHODS,
    ECHO_SCOPE,
    Protected,
    echo_policy,
    protect,
    refusal,
    wait_until,
)

ALICE = Principal(subject="alice", scopes=frozenset({ECHO_SCOPE}))
BOB = Principal(subject="bob")
"""Known, but without the scope the Echo's methods need."""


@dataclass
class TableVerifier:
    """Opaque tokens looked up in a table; ``down`` makes it fail as an outage would."""

    tokens: dict[str, Principal] = field(default_factory=dict)
    down: bool = False
    asked: list[str] = field(default_factory=list)

    def check(self, token: str) -> Principal:
        self.asked.append(token)
        if self.down:
            raise VerifierUnavailable()
        try:
            return self.tokens[token]
        except KeyError:
            raise TokenInvalid() from None


class SyncTable(TableVerifier):
    def verify(self, token: str) -> Principal:
        return self.check(token)


class AioTable(TableVerifier):
    async def verify(self, token: str) -> Principal:
        return self.check(token)


@dataclass
class Remembering(SyncTable):
    """With both optional parts: a fast path and a per-message recheck."""

    remembered: dict[str, Principal] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)

    def verify(self, token: str) -> Principal:
        principal = self.check(token)
        self.remembered[token] = principal
        return principal

    def lookup(self, token: str) -> Principal | None:
        return self.remembered.get(token)

    def recheck(self, principal: Principal) -> AuthError | None:
        return TokenRevoked() if principal.subject in self.revoked else None


class AioRemembering(Remembering):
    async def verify(self, token: str) -> Principal:  # type: ignore[override]
        return Remembering.verify(self, token)


def _table() -> dict[str, Principal]:
    return {"alice-opaque": ALICE, "bob-opaque": BOB}


@pytest.fixture(params=["sync", "aio"])
def served(request: pytest.FixtureRequest, loop: LoopThread) -> Iterator[Protected]:
    """An Echo behind the flavour's interceptor, judged by a :class:`TableVerifier`."""
    verifier = SyncTable(_table()) if request.param == "sync" else AioTable(_table())
    with protect(
        request.param, verifier, echo_policy(), loop=loop, echo=Echo(ECHO_METHODS)
    ) as server:
        yield server


@pytest.fixture(params=["sync", "aio"])
def remembering(request: pytest.FixtureRequest, loop: LoopThread) -> Iterator[Protected]:
    """The same, judged by a verifier with ``lookup`` and ``recheck``."""
    verifier = Remembering(_table()) if request.param == "sync" else AioRemembering(_table())
    with protect(
        request.param, verifier, echo_policy(), loop=loop, echo=Echo(ECHO_METHODS)
    ) as server:
        yield server


@pytest.mark.parametrize("kind", KINDS)
def test_a_token_it_accepts_reaches_the_handler_with_its_principal(
    served: Protected, kind: Kind
) -> None:
    answers = call(served.channel, kind, metadata=bearer("alice-opaque"))
    assert {answer.subject for answer in answers} == {"alice"}
    assert served.verifier.asked == ["alice-opaque"]
    assert served.echo.calls == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_token_it_refuses_never_reaches_the_handler(served: Protected, kind: Kind) -> None:
    error = refusal(lambda: call(served.channel, kind, metadata=bearer("stolen-guess")))
    assert_refused(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")
    assert served.echo.calls == 0


@pytest.mark.parametrize("kind", KINDS)
def test_the_policy_applies_to_its_principals(served: Protected, kind: Kind) -> None:
    error = refusal(lambda: call(served.channel, kind, metadata=bearer("bob-opaque")))
    assert_refused(error, grpc.StatusCode.PERMISSION_DENIED, "INSUFFICIENT_SCOPE")
    assert served.echo.calls == 0


@pytest.mark.parametrize("kind", KINDS)
def test_its_outage_refuses_the_call(served: Protected, kind: Kind) -> None:
    served.verifier.down = True
    error = refusal(lambda: call(served.channel, kind, metadata=bearer("alice-opaque")))
    assert_refused(error, grpc.StatusCode.UNAVAILABLE, "VERIFIER_UNAVAILABLE")
    assert served.echo.calls == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_token_is_handed_over_as_sent_without_a_jwt_check(served: Protected, kind: Kind) -> None:
    served.verifier.tokens["not.a.jwt~+/="] = ALICE
    (answer, *_) = call(served.channel, kind, metadata=bearer("not.a.jwt~+/="))
    assert answer.subject == "alice"
    assert served.verifier.asked == ["not.a.jwt~+/="]


@pytest.mark.parametrize("kind", KINDS)
def test_without_lookup_every_call_is_verified(served: Protected, kind: Kind) -> None:
    for _ in range(3):
        call(served.channel, kind, metadata=bearer("alice-opaque"))
    assert served.verifier.asked == ["alice-opaque"] * 3


@pytest.mark.parametrize("kind", KINDS)
def test_its_lookup_spares_the_verification(remembering: Protected, kind: Kind) -> None:
    for _ in range(3):
        (answer, *_) = call(remembering.channel, kind, metadata=bearer("alice-opaque"))
        assert answer.subject == "alice"
    assert remembering.verifier.asked == ["alice-opaque"]


@pytest.mark.parametrize("kind", ["unary_stream", "stream_stream"])
def test_its_recheck_ends_a_stream_mid_way(remembering: Protected, kind: Kind) -> None:
    """Between the two answers of a stream, the caller is revoked: the second never comes."""
    verifier: Remembering = remembering.verifier
    received: list[bytes] = []
    responses: Any
    if kind == "unary_stream":
        remembering.echo.between = lambda: verifier.revoked.add("alice")
        server_stream: Any = remembering.channel.unary_stream(path("ServerStream"))
        responses = server_stream(b"a", metadata=bearer("alice-opaque"), timeout=10)
    else:
        requests = iter([b"a", b"b"])

        def revoke_then_send() -> Iterator[bytes]:
            yield next(requests)
            wait_until(lambda: len(received) == 1)
            verifier.revoked.add("alice")
            yield next(requests)

        bidi: Any = remembering.channel.stream_stream(path("BidiStream"))
        responses = bidi(revoke_then_send(), metadata=bearer("alice-opaque"), timeout=10)
    with pytest.raises(grpc.RpcError) as raised:
        for response in responses:
            received.append(response)
    assert len(received) == 1
    assert_refused(raised.value, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED")
