"""Test helpers for services protected by bearer_grpc (and for bearer_grpc's own tests).

Everything here is real: real keys, real signed tokens, real gRPC servers on a free
loopback port. Nothing is mocked::

    from bearer_grpc.testing import Echo, FrozenClock, TestIssuer, bearer, call, serve

    clock = FrozenClock()
    issuer = TestIssuer(clock=clock)
    verifier = issuer.verifier(audience="orders")          # a bearer_grpc.Verifier
    token = issuer.token(subject="svc", scopes=["orders.read"], audience="orders")
    clock.advance(3600)                                     # now it has expired

    echo = Echo()                                           # all four RPC kinds
    interceptor = bearer_grpc.BearerServerInterceptor(verifier)
    with serve([echo.handler()], interceptors=[interceptor]) as target, \
            grpc.insecure_channel(target) as channel:
        (answer,) = call(channel, "unary_unary", metadata=bearer(token))

The kit's modules: :mod:`.echo` (the Echo service and calls to it), :mod:`.servers`
(``serve``, ``serve_aio``, ``LoopThread``) and :mod:`.errors` (reading a refusal); every
public name is also here.

Never use these keys outside tests: they are generated per process and never stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, Final

from bearer_grpc import SigningKey, Verifier
from bearer_grpc import aio as _aio
from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.keys import Algorithm
from bearer_grpc.core.tokens import IssuedToken, issue_access_token
from bearer_grpc.testing.echo import (
    KINDS,
    METHODS,
    SERVICE,
    Answer,
    Echo,
    Kind,
    bearer,
    call,
    call_aio,
    path,
)
from bearer_grpc.testing.errors import assert_refused, error_info, reason_of
from bearer_grpc.testing.servers import LoopThread, serve, serve_aio

__all__ = [
    "DEFAULT_ISSUER",
    "DEFAULT_START",
    "KINDS",
    "METHODS",
    "SERVICE",
    "Answer",
    "Echo",
    "FrozenClock",
    "Kind",
    "LoopThread",
    "TestIssuer",
    "assert_refused",
    "bearer",
    "call",
    "call_aio",
    "error_info",
    "path",
    "reason_of",
    "serve",
    "serve_aio",
]

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
        age: int = 0,
    ) -> IssuedToken:
        """Sign an access token (RFC 9068 profile).

        Args:
            subject: ``sub``.
            scopes: ``scope``, space-joined.
            audience: ``aud``.
            lifetime: Seconds from ``iat`` to ``exp``.
            client_id: ``client_id`` (default: ``subject``).
            age: Seconds before now it was issued (``age > lifetime`` gives an
                expired token).

        Returns:
            The token and its claims.
        """
        return issue_access_token(
            self.key,
            issuer=self.issuer,
            subject=subject,
            audience=audience,
            scopes=scopes,
            client_id=client_id or subject,
            lifetime=lifetime,
            now=int(self.clock()) - age,
        )

    def impostor(self) -> TestIssuer:
        """An issuer of the same name, clock and ``kid`` but another key.

        Its tokens claim this issuer's key and must fail the signature check.
        """
        twin = TestIssuer(self.issuer, algorithm=self.key.alg, clock=self.clock)
        twin.key = dataclasses.replace(twin.key, kid=self.key.kid)
        return twin

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
