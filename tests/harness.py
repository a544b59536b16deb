"""A real TokenService for tests: an aio server on a free port, in a thread of its own.

Tests talk to it with ordinary sync gRPC clients, exactly as users' services would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.keys import KeyEncryptionKey
from bearer_grpc.service.admin import Admin, NewClient
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.server import ServeConfig, TokenServer
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import SqlStore, open_store
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc

_T = TypeVar("_T")


class LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the loop and wait for its result."""
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        """Stop the loop and join the thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


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
        name: str = "orders-client",
        scopes: tuple[str, ...] = ("orders.read", "orders.write"),
        audiences: tuple[str, ...] = ("orders",),
    ) -> NewClient:
        """Create a client (the server sees it on the next lookup: the store is shared)."""
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
    """Start a TokenService on ``store_url`` listening on 127.0.0.1, port 0."""
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
    loop = LoopThread()
    try:
        port = loop.run(server.start())
        service = RunningService(server, store, loop, f"127.0.0.1:{port}")
        try:
            yield service
        finally:
            for channel in service.channels:
                channel.close()
            loop.run(server.stop(grace=1))
    finally:
        loop.run(loop.loop.shutdown_default_executor())  # no store work left in threads
        loop.close()
        store.close()


def wait_until(predicate: Callable[[], _T], *, timeout: float = 5.0, interval: float = 0.01) -> _T:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds.

    A deadline, not a sleep: it returns as soon as the condition holds.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
