"""A real deployment per signing algorithm, attacked through every path.

For each algorithm (ES256, EdDSA, RS256) a real TokenService runs on a SQLite store with
a frozen clock, and two Echo servers (``grpc.server`` and ``grpc.aio.server``) are
protected by bearer_grpc's interceptors with a verifier built from the JWKS the service
publishes over GetJwks. A hostile token must be refused on four paths:

- ``verify_rpc_sync`` / ``verify_rpc_aio``: the TokenService's VerifyToken, called with a
  sync and a ``grpc.aio`` client, answers OK with ``active=false`` and a reason;
- ``interceptor_sync`` / ``interceptor_aio``: the protected server refuses the call with
  UNAUTHENTICATED before the handler runs.

Deployments start lazily (RSA key generation is slow) and live for the session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc.core.keys import ALGORITHMS, SigningKey
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import sqlite_url
from bearer_grpc.testing import FrozenClock, LoopThread
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import (
    ECHO_AUDIENCE,
    Protected,
    RunningService,
    echo_policy,
    protect,
    running_service,
)
from tests.security._forge import Kit

START = 1_800_000_000
ISSUER = "https://tokens.security.test"
AUDIENCE = ECHO_AUDIENCE


@dataclass
class Deployment:
    """A TokenService, its signing key and the servers it protects."""

    alg: str
    service: RunningService
    kit: Kit
    stub: pb_grpc.TokenServiceStub
    aio_channel: grpc.aio.Channel
    servers: dict[str, Protected]


@pytest.fixture(scope="session")
def security_clock() -> FrozenClock:
    """The one clock of every deployment (never advanced: tokens carry their times)."""
    return FrozenClock(START)


@pytest.fixture(scope="session")
def security_loop() -> Iterator[LoopThread]:
    """Event loop for the aio Echo servers and the aio clients."""
    with LoopThread() as running:
        yield running


@pytest.fixture(scope="session")
def attackers() -> dict[str, SigningKey]:
    """An untrusted key per algorithm."""
    return {alg: SigningKey.generate(alg) for alg in ALGORITHMS}


class Deployments:
    """Starts a deployment per algorithm on first use; stops them all at the end."""

    def __init__(
        self,
        root: Path,
        clock: FrozenClock,
        loop: LoopThread,
        attackers: dict[str, SigningKey],
    ) -> None:
        self._root, self._clock, self._loop, self._attackers = root, clock, loop, attackers
        self._stack = contextlib.ExitStack()
        self._started: dict[str, Deployment] = {}

    def __getitem__(self, alg: str) -> Deployment:
        if alg not in self._started:
            self._started[alg] = self._start(alg)
        return self._started[alg]

    def _start(self, alg: str) -> Deployment:
        settings = ServiceSettings(issuer=ISSUER, key_algorithm=alg)  # type: ignore[arg-type]
        service = self._stack.enter_context(
            running_service(sqlite_url(self._root / alg), settings=settings, clock=self._clock)
        )
        stub = service.stub()
        jwks = stub.GetJwks(pb.GetJwksRequest(), timeout=10)
        assert jwks.issuer == ISSUER
        key = service.authority.keys.signing_key(START)
        kit = Kit(
            key=key,
            issuer=ISSUER,
            audience=AUDIENCE,
            now=START,
            leeway=settings.leeway,
            attackers=self._attackers,
        )
        servers = {
            "sync": self._protect_sync(jwks.jwks_json),
            "aio": self._protect_aio(jwks.jwks_json),
        }
        aio_channel = self._loop.run(_open_aio_channel(service.target))
        self._stack.callback(lambda: self._loop.run(aio_channel.close()))
        return Deployment(alg, service, kit, stub, aio_channel, servers)

    def _protect_sync(self, jwks_json: str) -> Protected:
        verifier = bearer_grpc.Verifier.from_jwks(
            jwks_json, issuer=ISSUER, audience=AUDIENCE, clock=self._clock
        )
        return self._stack.enter_context(protect("sync", verifier, echo_policy()))

    def _protect_aio(self, jwks_json: str) -> Protected:
        verifier = bearer_grpc.aio.Verifier.from_jwks(
            jwks_json, issuer=ISSUER, audience=AUDIENCE, clock=self._clock
        )
        return self._stack.enter_context(protect("aio", verifier, echo_policy(), loop=self._loop))

    def close(self) -> None:
        """Stop everything started."""
        self._stack.close()


async def _open_aio_channel(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(target)


@pytest.fixture(scope="session")
def deployments(
    tmp_path_factory: pytest.TempPathFactory,
    security_clock: FrozenClock,
    security_loop: LoopThread,
    attackers: dict[str, SigningKey],
) -> Iterator[Deployments]:
    """Deployments by algorithm, started on first use."""
    started = Deployments(
        tmp_path_factory.mktemp("security"), security_clock, security_loop, attackers
    )
    yield started
    started.close()
