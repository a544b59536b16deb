"""Test helpers for services protected by bearer_grpc (and for bearer_grpc's own tests).

Everything here is real: real keys, real signed tokens, real gRPC servers on a free
loopback port. Nothing is mocked::

    from bearer_grpc.testing import FrozenClock, TestIssuer

    clock = FrozenClock()
    issuer = TestIssuer(clock=clock)
    verifier = issuer.verifier(audience="orders")          # a bearer_grpc.Verifier
    token = issuer.token(subject="svc", scopes=["orders.read"], audience="orders")
    clock.advance(3600)                                     # now it has expired

Never use these keys outside tests: they are generated per process and never stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from concurrent import futures
from typing import Any, Final

import grpc

from bearer_grpc import aio as _aio
from bearer_grpc._verifier.verifier import Verifier
from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.keys import Algorithm, SigningKey
from bearer_grpc.core.tokens import IssuedToken, issue_access_token

DEFAULT_ISSUER: Final = "https://bearer-grpc.test"
DEFAULT_START: Final = 1_800_000_000.0
"""Where a FrozenClock starts by default (2027-01-15T08:00:00Z)."""


class FrozenClock:
    """Wall-clock time that moves only when told to; pass it as ``clock=``.

    Args:
        now: Starting time in seconds since the epoch (default: a fixed instant, so runs
            are repeatable).
    """

    def __init__(self, now: float = DEFAULT_START) -> None:
        self.now = now

    def __call__(self) -> float:
        """The current (frozen) time."""
        return self.now

    def __repr__(self) -> str:
        return f"FrozenClock(now={self.now})"

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds


class TestIssuer:
    """An in-memory token issuer with a throwaway key, for tests.

    Args:
        issuer: ``iss`` of the tokens.
        algorithm: Key algorithm (ES256 default; EdDSA, RS256).
        clock: Time source for ``iat``/``exp`` (default: real time).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        issuer: str = DEFAULT_ISSUER,
        *,
        algorithm: Algorithm = "ES256",
        clock: Clock = system_clock,
    ) -> None:
        self.issuer = issuer
        self.key = SigningKey.generate(algorithm)
        self.clock = clock

    def __repr__(self) -> str:
        return f"TestIssuer(issuer={self.issuer!r}, kid={self.key.kid!r})"

    @property
    def jwks(self) -> dict[str, Any]:
        """The public key set verifiers should trust."""
        return {"keys": [dict(self.key.jwk)]}

    def issue(
        self,
        *,
        subject: str = "test-client",
        scopes: Iterable[str] = (),
        audience: str = "test",
        lifetime: int = 900,
        client_id: str | None = None,
    ) -> IssuedToken:
        """Sign an access token (RFC 9068 profile) valid from now for ``lifetime`` s."""
        return issue_access_token(
            self.key,
            issuer=self.issuer,
            subject=subject,
            audience=audience,
            scopes=scopes,
            client_id=client_id or subject,
            lifetime=lifetime,
            now=int(self.clock()),
        )

    def token(self, **kwargs: Any) -> str:
        """Like :meth:`issue`, returning only the token string."""
        return self.issue(**kwargs).token

    def verifier(self, *, audience: str = "test", **kwargs: Any) -> Verifier:
        """A sync ``bearer_grpc.Verifier`` trusting this issuer (same clock)."""
        kwargs.setdefault("clock", self.clock)
        return Verifier.from_jwks(self.jwks, issuer=self.issuer, audience=audience, **kwargs)

    def aio_verifier(self, *, audience: str = "test", **kwargs: Any) -> _aio.Verifier:
        """A ``bearer_grpc.aio.Verifier`` trusting this issuer (same clock)."""
        kwargs.setdefault("clock", self.clock)
        return _aio.Verifier.from_jwks(self.jwks, issuer=self.issuer, audience=audience, **kwargs)


@contextlib.contextmanager
def serve(
    handlers: Sequence[grpc.GenericRpcHandler],
    *,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    max_workers: int = 8,
) -> Iterator[str]:
    """Run a sync ``grpc.server`` with ``handlers`` on 127.0.0.1, a free port.

    Yields:
        The target (``127.0.0.1:PORT``); the server stops when the block ends.
    """
    with futures.ThreadPoolExecutor(max_workers=max_workers) as pool:
        server = grpc.server(pool, handlers=list(handlers), interceptors=list(interceptors))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            yield f"127.0.0.1:{port}"
        finally:
            server.stop(None).wait()


@contextlib.asynccontextmanager
async def serve_aio(
    handlers: Sequence[grpc.GenericRpcHandler],
    *,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> AsyncIterator[str]:
    """Run a ``grpc.aio.server`` with ``handlers`` on 127.0.0.1, a free port.

    Yields:
        The target (``127.0.0.1:PORT``); the server stops when the block ends.
    """
    server = grpc.aio.server(handlers=list(handlers), interceptors=list(interceptors))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
