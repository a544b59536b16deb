"""Fixtures: a throwaway PKI, a token issuer, and one sync and one aio server behind the
interceptor, each on mutual-TLS, TLS and plaintext ports, for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bearer_grpc.testing import FrozenClock, LoopThread, TestIssuer
from tests.bound._servers import Server, Tokens, bound_policy, running
from tests.harness import Pki, make_pki


@pytest.fixture(scope="session")
def pki() -> Pki:
    """A CA, the server's certificate, and the clients alice, mallory and proxy."""
    return make_pki("alice", "mallory", "proxy")


@pytest.fixture(scope="session")
def tokens() -> Tokens:
    """Signs the tokens the servers trust (on a clock that never moves here)."""
    return Tokens(TestIssuer(clock=FrozenClock()))


@pytest.fixture(scope="session")
def loop() -> Iterator[LoopThread]:
    """The event loop the aio servers run on."""
    with LoopThread() as running_loop:
        yield running_loop


@pytest.fixture(scope="session")
def sync_server(tokens: Tokens, pki: Pki, loop: LoopThread) -> Iterator[Server]:
    """A ``grpc.server`` with Echo and BoundEcho (:func:`bound_policy`)."""
    with running("sync", tokens.verifier("sync"), pki, loop, bound_policy()) as started:
        yield started


@pytest.fixture(scope="session")
def aio_server(tokens: Tokens, pki: Pki, loop: LoopThread) -> Iterator[Server]:
    """The same on a ``grpc.aio.server``."""
    with running("aio", tokens.verifier("aio"), pki, loop, bound_policy()) as started:
        yield started


@pytest.fixture(params=["sync", "aio"])
def server(request: pytest.FixtureRequest) -> Server:
    """Each flavour in turn, its counter reset."""
    chosen: Server = request.getfixturevalue(f"{request.param}_server")
    chosen.echo.reset()
    return chosen
