"""Fixtures: a throwaway PKI, a signing key, and one sync and one aio server behind the
interceptor, each on mutual-TLS, TLS and plaintext ports, for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bearer_grpc.core.keys import SigningKey
from bearer_grpc.testing import FrozenClock
from tests.bound._pki import Pki, make_pki
from tests.bound._servers import Server, Tokens, bound_policy, running
from tests.harness import LoopThread
from tests.interceptors.support import START


@pytest.fixture(scope="session")
def pki() -> Pki:
    """A CA, the server's certificate, and the clients alice, mallory and proxy."""
    return make_pki("alice", "mallory", "proxy")


@pytest.fixture(scope="session")
def tokens() -> Tokens:
    """Signs the tokens the servers trust (on a clock that never moves here)."""
    return Tokens(SigningKey.generate(), FrozenClock(START))


@pytest.fixture(scope="session")
def loop() -> Iterator[LoopThread]:
    """The event loop the aio servers run on."""
    running_loop = LoopThread()
    yield running_loop
    running_loop.close()


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
    """Each flavour in turn, its counters reset."""
    chosen: Server = request.getfixturevalue(f"{request.param}_server")
    chosen.calls.reset()
    return chosen
