"""Fixtures: one sync and one aio Echo server behind the interceptor, a clock, an issuer.

Both servers live for the whole session (starting servers is the slow part) and share a
controllable clock, reset before each test; the ``server`` fixture runs a test against
each flavour and resets that server's counter and hooks. Tokens get a fresh ``jti``
each, so revoking one touches no other test, and the verified-token cache never hands
one test's token to another.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health, health_pb2

from bearer_grpc.testing import Echo, FrozenClock, LoopThread, TestIssuer
from tests.harness import ECHO_AUDIENCE, ECHO_METHODS, Protected, aio_extras, echo_policy, protect
from tests.interceptors.support import ISSUER, START


@pytest.fixture(scope="session")
def clock() -> FrozenClock:
    """The clock every verifier here reads."""
    return FrozenClock(START)


@pytest.fixture(scope="session")
def issuer(clock: FrozenClock) -> TestIssuer:
    """Signs the tokens the servers trust."""
    return TestIssuer(ISSUER, clock=clock)


@pytest.fixture(scope="session")
def loop() -> Iterator[LoopThread]:
    """The event loop the aio servers run on."""
    with LoopThread() as running:
        yield running


def _health(servicer: object) -> grpc.GenericRpcHandler:
    """The ``grpc.health.v1.Health/Check`` method of ``servicer`` as a generic handler."""
    check = grpc.unary_unary_rpc_method_handler(
        servicer.Check,  # type: ignore[attr-defined]
        request_deserializer=health_pb2.HealthCheckRequest.FromString,
        response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": check})


@pytest.fixture(scope="session")
def sync_server(issuer: TestIssuer) -> Iterator[Protected]:
    """A ``grpc.server`` behind ``bearer_grpc.BearerServerInterceptor``, with the health
    service and ``BidiReadWrite`` (the Echo's bidi stream under a second name)."""
    verifier = issuer.verifier(audience=ECHO_AUDIENCE)
    echo = Echo({**ECHO_METHODS, "BidiReadWrite": "stream_stream"})
    handlers = (_health(health.HealthServicer()),)
    with protect("sync", verifier, echo_policy(), echo=echo, handlers=handlers) as server:
        yield server


@pytest.fixture(scope="session")
def aio_server(issuer: TestIssuer, loop: LoopThread) -> Iterator[Protected]:
    """A ``grpc.aio.server`` behind ``bearer_grpc.aio.BearerServerInterceptor``, with the
    health service, ``BidiReadWrite`` (``context.read()``/``write()`` instead of an async
    generator) and ``SyncUnary`` (a sync behaviour, which the interceptor refuses)."""
    verifier = issuer.aio_verifier(audience=ECHO_AUDIENCE)
    echo = Echo(ECHO_METHODS)
    handlers = (_health(health.aio.HealthServicer()), aio_extras(echo))
    with protect("aio", verifier, echo_policy(), loop=loop, echo=echo, handlers=handlers) as server:
        yield server


@pytest.fixture(params=["sync", "aio"])
def server(request: pytest.FixtureRequest) -> Protected:
    """Each flavour in turn, its counter and hooks reset."""
    chosen: Protected = request.getfixturevalue(f"{request.param}_server")
    chosen.echo.reset()
    return chosen


@pytest.fixture(autouse=True)
def fresh_clock(clock: FrozenClock) -> None:
    """Every test starts at the same time."""
    clock.now = START
