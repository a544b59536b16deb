"""A real TokenService for tests: an aio server on a free port, in a loop thread of its own;
and small helpers around calls to it."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.keys import KeyEncryptionKey
from bearer_grpc.service.admin import Admin, NewClient
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.server import ServeConfig, TokenServer
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import SqlStore, open_store
from bearer_grpc.testing import LoopThread
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc

_T = TypeVar("_T")


@dataclass
class RunningService:
    """A started TokenService and what tests need to reach it."""

    server: TokenServer
    store: SqlStore
    loop: LoopThread
    target: str
    channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def authority(self) -> TokenAuthority:
        """The service's authority (for white-box checks)."""
        return self.server.authority

    @property
    def admin(self) -> Admin:
        """Operator actions on the service's store."""
        return Admin(self.store)

    def stub(self, **channel_kwargs: Any) -> pb_grpc.TokenServiceStub:
        """A TokenService stub on a fresh plaintext channel (closed at stop)."""
        channel = grpc.insecure_channel(self.target, **channel_kwargs)
        self.channels.append(channel)
        return pb_grpc.TokenServiceStub(channel)

    def add_client(
        self,
        name: str | None = None,
        scopes: tuple[str, ...] = ("orders.read", "orders.write"),
        audiences: tuple[str, ...] = ("orders",),
    ) -> NewClient:
        """Create a client (the server sees it on the next lookup: the store is shared),
        named ``name`` or a name no other client has."""
        name = name or f"client-{uuid.uuid4().hex[:16]}"
        return self.admin.add_client(name, scopes=scopes, audiences=audiences)

    def issue(self, client: NewClient, **request: Any) -> pb.IssueTokenResponse:
        """IssueToken with client credentials."""
        req = pb.IssueTokenRequest(
            client_credentials=pb.ClientCredentialsGrant(
                client_id=client.client_id, client_secret=client.client_secret
            ),
            **request,
        )
        response: pb.IssueTokenResponse = self.stub().IssueToken(req, timeout=10)
        return response


@contextmanager
def running_service(
    store_url: str,
    *,
    settings: ServiceSettings | None = None,
    clock: Clock = system_clock,
    kek: KeyEncryptionKey | None = None,
    config: ServeConfig | None = None,
    busy_timeout_s: float = 5.0,
) -> Iterator[RunningService]:
    """Start a TokenService on ``store_url`` listening on 127.0.0.1, port 0.

    It stops in the one order that leaves no thread touching a closed store: the server
    (``TokenServer.stop`` also waits for a store sync already running in its pool), then
    the loop's default executor (``LoopThread.close`` drains it), then the store.
    """
    store = open_store(store_url, busy_timeout_s=busy_timeout_s)
    with running_on(store, settings=settings, clock=clock, kek=kek, config=config) as service:
        yield service


@contextmanager
def running_on(
    store: Any,
    *,
    settings: ServiceSettings | None = None,
    clock: Clock = system_clock,
    kek: KeyEncryptionKey | None = None,
    config: ServeConfig | None = None,
) -> Iterator[RunningService]:
    """Start a TokenService on an open store (or a wrapper around one); closes it after."""
    authority = TokenAuthority(store, settings or ServiceSettings(), kek=kek, clock=clock)
    server = TokenServer(authority, config or ServeConfig(listen="127.0.0.1:0", grace=1))
    try:
        with LoopThread() as loop:
            port = loop.run(server.start())
            service = RunningService(server, store, loop, f"127.0.0.1:{port}")
            try:
                yield service
            finally:
                for channel in service.channels:
                    channel.close()
                loop.run(server.stop(grace=1))
    finally:
        store.close()


def refusal(action: Callable[[], Any]) -> grpc.RpcError:
    """The error the gRPC call ``action`` fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as failed:
        action()
    return failed.value


def wait_until(predicate: Callable[[], _T], *, timeout: float = 5.0, interval: float = 0.01) -> _T:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds.

    A deadline, not a sleep: it returns as soon as the condition holds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def health_status(target: str, service: str = "", timeout: float = 5.0) -> int:
    """``grpc.health.v1.Health/Check`` on a fresh channel: ``SERVING``, ``NOT_SERVING``..."""
    with grpc.insecure_channel(target) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    status: int = response.status
    return status


SERVING: Final = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: Final = health_pb2.HealthCheckResponse.NOT_SERVING


def jwt_segment(token: str, index: int) -> dict[str, Any]:
    """Decode a compact JWS segment (0 = header, 1 = claims) without verifying anything."""
    segment = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))  # type: ignore[no-any-return]
