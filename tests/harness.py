"""What several test folders share (bearer_grpc.testing holds the rest):

- a real TokenService on a free port, in a loop thread of its own (:func:`running_service`);
  tests talk to it with ordinary sync gRPC clients, exactly as users' services would;
- the kit's Echo protected by bearer_grpc's server interceptor (:func:`protect`), with the
  policy the interceptor, security and fault tests use (:func:`echo_policy`);
- :func:`wait_until`, a deadline instead of a sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import grpc
import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc import Policy
from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.keys import KeyEncryptionKey
from bearer_grpc.core.tokens import IssuedToken
from bearer_grpc.service.admin import Admin, NewClient
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.server import ServeConfig, TokenServer
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import SqlStore, open_store
from bearer_grpc.testing import Echo, Kind, LoopThread, path, serve, serve_aio
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc

__all__ = ["LoopThread"]  # re-exported: tests/store imports it from here

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
    """Start a TokenService on ``store_url`` listening on 127.0.0.1, port 0.

    It stops in the one order that leaves no thread touching a closed store: the server
    (``TokenServer.stop`` also waits for a store sync already running in its pool), then
    the loop's default executor (``LoopThread.close`` drains it), then the store.
    """
    store = open_store(store_url, busy_timeout_s=busy_timeout_s)
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


# -- the Echo, protected ------------------------------------------------------------------

ECHO_AUDIENCE: Final = "echo"
"""The audience the protected Echo servers require."""
ECHO_SCOPE: Final = "echo.use"
"""The scope every protected Echo method needs (:func:`echo_policy`)."""
ECHO_ADMIN_SCOPE: Final = "echo.admin"
"""The scope ``Admin`` needs instead."""
ECHO_METHODS: Final[dict[str, Kind]] = {"Public": "unary_unary", "Admin": "unary_unary"}
"""The Echo's methods besides the four kinds: two unary ones for the policy to tell apart."""


def echo_policy(**kwargs: Any) -> Policy:
    """Echo's rules: ``Public`` is public, ``Admin`` needs ``echo.admin``, the rest
    ``echo.use``; ``kwargs`` go to :class:`bearer_grpc.Policy`."""
    return Policy(
        public=[path("Public")],
        scopes={path("*"): [ECHO_SCOPE], path("Admin"): [ECHO_ADMIN_SCOPE]},
        **kwargs,
    )


@dataclass
class Protected:
    """A running Echo behind bearer_grpc's server interceptor, and what tests steer.

    Attributes:
        flavour: ``sync`` (``grpc.server``) or ``aio`` (``grpc.aio.server``).
        target: Its plaintext address.
        channel: A sync channel to it.
        interceptor: bearer_grpc's server interceptor (sync or aio, as the flavour).
        verifier: The interceptor's verifier.
        echo: The Echo it serves (its call counter and hooks).
    """

    flavour: str
    target: str
    channel: grpc.Channel
    interceptor: Any
    verifier: Any
    echo: Echo

    def revoke(self, token: IssuedToken) -> None:
        """Revoke ``token`` at this server's verifier, as WatchRevocations would."""
        self.verifier.local.revocations.add(token.token_id, token.expires_at)


@contextmanager
def protect(
    flavour: str,
    verifier: Any,
    policy: Policy | None = None,
    *,
    loop: LoopThread | None = None,
    echo: Echo | None = None,
    handlers: tuple[grpc.GenericRpcHandler, ...] = (),
    credentials: grpc.ServerCredentials | None = None,
) -> Iterator[Protected]:
    """Serve an Echo (with :data:`ECHO_METHODS`) behind the interceptor of ``flavour``.

    Args:
        flavour: ``sync`` or ``aio``.
        verifier: A verifier of that flavour.
        policy: The interceptor's policy (default: bearer_grpc's).
        loop: Where an aio server runs (required for ``aio``).
        echo: The Echo to serve (default: a new one).
        handlers: More services next to the Echo (aio: with async behaviours).
        credentials: The port's server credentials (default: plaintext); ``channel``
            is then of no use, reach ``target`` with matching channel credentials.
    """
    echo = echo or Echo(ECHO_METHODS)
    interceptor: Any
    if flavour == "sync":
        interceptor = bearer_grpc.BearerServerInterceptor(verifier, policy)
        serving = serve(
            [echo.handler(), *handlers], interceptors=[interceptor], credentials=credentials
        )
    else:
        assert loop is not None, "an aio server needs a LoopThread"
        interceptor = bearer_grpc.aio.BearerServerInterceptor(verifier, policy)
        serving = loop.context(
            serve_aio(
                [echo.aio_handler(), *handlers],
                interceptors=[interceptor],
                credentials=credentials,
            )
        )
    with serving as target, grpc.insecure_channel(target) as channel:
        yield Protected(flavour, target, channel, interceptor, verifier, echo)
