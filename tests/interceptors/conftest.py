"""Fixtures: one sync and one aio Echo server behind the interceptor, a clock, tokens.

Both servers live for the whole session (starting servers is the slow part) and share a
controllable clock, reset before each test; the ``server`` fixture runs a test against
each flavour and resets that server's counters and hooks. Tokens get a fresh ``jti``
each, so revoking one touches no other test, and the verified-token cache never hands
one test's token to another.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc.core.keys import SigningKey
from bearer_grpc.testing import FrozenClock
from tests.harness import LoopThread
from tests.interceptors.echo import Calls, serve_aio, serve_sync
from tests.interceptors.support import (
    AUDIENCE,
    ISSUER,
    START,
    Server,
    Tokens,
    echo_policy,
)


@pytest.fixture(scope="session")
def clock() -> FrozenClock:
    """The clock every verifier here reads."""
    return FrozenClock(START)


@pytest.fixture(scope="session")
def tokens(clock: FrozenClock) -> Tokens:
    """Token issuer for the session."""
    return Tokens(SigningKey.generate(), clock)


@pytest.fixture(scope="session")
def loop() -> Iterator[LoopThread]:
    """The event loop the aio servers run on."""
    running = LoopThread()
    yield running
    running.close()


@pytest.fixture(scope="session")
def sync_server(tokens: Tokens, clock: FrozenClock) -> Iterator[Server]:
    """A ``grpc.server`` behind ``bearer_grpc.BearerServerInterceptor``."""
    verifier = bearer_grpc.Verifier.from_jwks(
        tokens.jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock
    )
    calls = Calls()
    interceptor = bearer_grpc.BearerServerInterceptor(verifier, echo_policy())
    with serve_sync(interceptor, calls) as endpoints:
        channel = grpc.insecure_channel(endpoints.target)
        yield Server("sync", endpoints, channel, verifier, calls)
        channel.close()


@pytest.fixture(scope="session")
def aio_server(tokens: Tokens, clock: FrozenClock, loop: LoopThread) -> Iterator[Server]:
    """A ``grpc.aio.server`` behind ``bearer_grpc.aio.BearerServerInterceptor``."""
    verifier = bearer_grpc.aio.Verifier.from_jwks(
        tokens.jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock
    )
    calls = Calls()
    interceptor = bearer_grpc.aio.BearerServerInterceptor(verifier, echo_policy())
    with serve_aio(loop, interceptor, calls) as endpoints:
        channel = grpc.insecure_channel(endpoints.target)
        yield Server("aio", endpoints, channel, verifier, calls)
        channel.close()


@pytest.fixture(params=["sync", "aio"])
def server(request: pytest.FixtureRequest) -> Server:
    """Each flavour in turn, its counters and hooks reset."""
    chosen: Server = request.getfixturevalue(f"{request.param}_server")
    chosen.calls.reset()
    return chosen


@pytest.fixture(autouse=True)
def fresh_clock(clock: FrozenClock) -> None:
    """Every test starts at the same time."""
    clock.now = START
