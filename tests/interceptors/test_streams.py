"""Long-lived streams: a token that stops being valid ends the stream at its next message.

The documented policy (``bearer_grpc._server``): once ``exp + leeway`` has passed or the
``jti`` is revoked, the stream ends with UNAUTHENTICATED ``TOKEN_EXPIRED`` /
``TOKEN_REVOKED`` when the next request arrives or the next response is produced. Time
and revocations are moved between messages by the test, never waited for.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator

import grpc
import pytest

from bearer_grpc.core.tokens import IssuedToken
from bearer_grpc.testing import FrozenClock, TestIssuer, bearer, path
from tests.harness import Protected, assert_challenged, challenge, refusal
from tests.interceptors.support import ALICE, TIMEOUT, alice, who

LIFETIME = 300
PAST_EXPIRY = LIFETIME + 31  # beyond the default 30 s leeway


def _invalidate(
    what: str, server: Protected, clock: FrozenClock, token: IssuedToken
) -> Callable[[], None]:
    if what == "expired":
        return lambda: clock.advance(PAST_EXPIRY)
    return lambda: server.revoke(token)


def _assert_ended(error: grpc.RpcError, what: str) -> None:
    reason = "TOKEN_EXPIRED" if what == "expired" else "TOKEN_REVOKED"
    description = "token expired" if what == "expired" else "token revoked"
    assert_challenged(error, grpc.StatusCode.UNAUTHENTICATED, reason, challenge(description))


@pytest.mark.parametrize("what", ["expired", "revoked"])
def test_server_stream_ends_at_next_response(
    what: str, server: Protected, issuer: TestIssuer, clock: FrozenClock
) -> None:
    token = alice(issuer, lifetime=LIFETIME)
    server.echo.between = _invalidate(what, server, clock, token)
    responses = server.channel.unary_stream(path("ServerStream"))(
        b"hi", metadata=bearer(token), timeout=TIMEOUT
    )

    assert who(next(responses)) == ALICE
    _assert_ended(refusal(lambda: next(responses)), what)


@pytest.mark.parametrize("method", ["BidiStream", "BidiReadWrite"])
@pytest.mark.parametrize("what", ["expired", "revoked"])
def test_bidi_stream_ends_at_next_request(
    what: str, method: str, server: Protected, issuer: TestIssuer, clock: FrozenClock
) -> None:
    token = alice(issuer, lifetime=LIFETIME)
    outbox: queue.Queue[bytes | None] = queue.Queue()

    def requests() -> Iterator[bytes]:
        while (request := outbox.get(timeout=TIMEOUT)) is not None:
            yield request

    responses = server.channel.stream_stream(path(method))(
        requests(), metadata=bearer(token), timeout=TIMEOUT
    )
    try:
        outbox.put(b"1")
        assert who(next(responses)) == ALICE
        _invalidate(what, server, clock, token)()
        outbox.put(b"2")
        _assert_ended(refusal(lambda: next(responses)), what)
    finally:
        outbox.put(None)
    assert server.echo.calls == 1


@pytest.mark.parametrize("what", ["expired", "revoked"])
def test_client_stream_ends_at_next_request(
    what: str, server: Protected, issuer: TestIssuer, clock: FrozenClock
) -> None:
    token = alice(issuer, lifetime=LIFETIME)
    invalidate = _invalidate(what, server, clock, token)

    def requests() -> Iterator[bytes]:
        yield b"1"
        invalidate()
        yield b"2"

    call = server.channel.stream_unary(path("ClientStream"))
    _assert_ended(refusal(lambda: call(requests(), metadata=bearer(token), timeout=TIMEOUT)), what)


def test_stream_within_the_leeway_goes_on(
    server: Protected, issuer: TestIssuer, clock: FrozenClock
) -> None:
    token = alice(issuer, lifetime=LIFETIME)
    server.echo.between = lambda: clock.advance(LIFETIME + 29)  # past exp, within leeway
    responses = server.channel.unary_stream(path("ServerStream"))(
        b"hi", metadata=bearer(token), timeout=TIMEOUT
    )
    assert [who(response) for response in responses] == [ALICE] * 2
