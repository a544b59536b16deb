"""Fixtures: a throwaway PKI, a signing key, and one sync and one aio server behind the
interceptor, each on mutual-TLS, TLS and plaintext ports, for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc.core.keys import SigningKey
from bearer_grpc.testing import FrozenClock
from tests.bound._pki import Pki, make_pki
from tests.bound._servers import Server, Tokens, bound_policy, open_channels, serve_aio, serve_sync
from tests.harness import LoopThread
from tests.interceptors.echo import Calls
from tests.interceptors.support import AUDIENCE, ISSUER, START


@pytest.fixture(scope="session")
def pki() -> Pki:
    """A CA, the server's certificate, and the clients alice, mallory and proxy."""
    return make_pki("alice", "mallory", "proxy")


@pytest.fixture(scope="session")
def clock() -> FrozenClock:
    """The clock the verifiers read (it never moves here)."""
    return FrozenClock(START)


@pytest.fixture(scope="session")
def tokens(clock: FrozenClock) -> Tokens:
    """Signs the tokens the servers trust."""
    return Tokens(SigningKey.generate(), clock)


@pytest.fixture(scope="session")
def loop() -> Iterator[LoopThread]:
    """The event loop the aio servers run on."""
    running = LoopThread()
    yield running
    running.close()


@pytest.fixture(scope="session")
def sync_server(tokens: Tokens, clock: FrozenClock, pki: Pki) -> Iterator[Server]:
    """A ``grpc.server`` behind ``bearer_grpc.BearerServerInterceptor``."""
    verifier = bearer_grpc.Verifier.from_jwks(
        tokens.jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock
    )
    calls = Calls()
    interceptor = bearer_grpc.BearerServerInterceptor(verifier, bound_policy())
    with serve_sync(interceptor, calls, pki) as ports:
        server = open_channels(Server("sync", ports, calls, verifier), pki)
        yield server
        server.close()


@pytest.fixture(scope="session")
def aio_server(tokens: Tokens, clock: FrozenClock, pki: Pki, loop: LoopThread) -> Iterator[Server]:
    """A ``grpc.aio.server`` behind ``bearer_grpc.aio.BearerServerInterceptor``."""
    verifier = bearer_grpc.aio.Verifier.from_jwks(
        tokens.jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock
    )
    calls = Calls()
    interceptor = bearer_grpc.aio.BearerServerInterceptor(verifier, bound_policy())
    with serve_aio(loop, interceptor, calls, pki) as ports:
        server = open_channels(Server("aio", ports, calls, verifier), pki)
        yield server
        server.close()


@pytest.fixture(params=["sync", "aio"])
def server(request: pytest.FixtureRequest) -> Server:
    """Each flavour in turn, its counters reset."""
    chosen: Server = request.getfixturevalue(f"{request.param}_server")
    chosen.calls.reset()
    return chosen
