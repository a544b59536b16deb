"""Fault injection against a real ``bearer-grpc serve`` process.

A :class:`Deployment` is one store (SQLite in a data directory, or a fresh PostgreSQL
schema) and the server process serving it. Tests stop it, ``kill -9`` it and start it
again on the same address and store, exactly as an operator or a crash would. While it
is down, a :class:`StandIn` can hold its address: a gRPC server answering every
TokenService call UNAVAILABLE (what an L7 proxy with no healthy backend does) that counts
the calls reaching it, so a test sees how hard clients retry.

Protected servers are the kit's Echo (all four RPC kinds) behind
``BearerServerInterceptor``, sync or aio (``tests.harness.protect``). Waits are deadlines,
never sleeps.
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from bearer_grpc import Verifier
from bearer_grpc import aio as bearer_aio
from bearer_grpc.service.admin import Admin
from bearer_grpc.store import open_store, sqlite_url
from bearer_grpc.testing import Kind, LoopThread, bearer, call
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import Cli, ServeProcess, pg_dsn, pg_schema_url, start_server

AUDIENCE = "orders"
TIMEOUT = 10.0
"""Deadline of every call a test makes."""
SERVE_ARGS = ("--sync-interval", "0.1", "--log-level", "info")
"""Reads other writers' keys and revocations (the CLI's) every 0.1 s."""


@dataclass
class Deployment:
    """One store and the ``bearer-grpc serve`` process in front of it.

    Attributes:
        cwd: Where commands run (the SQLite data directory lives here).
        store: The store URL; None for the default data directory under ``cwd``.
        server: The running process, if any.
        port: The address's port: 0 until the first start, then kept for restarts.
    """

    cwd: Path
    store: str | None = None
    server: ServeProcess | None = None
    port: int = 0
    stopped: list[ServeProcess] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """Environment of every command and the server: which store."""
        return {"BEARER_GRPC_STORE": self.store} if self.store else {}

    @property
    def url(self) -> str:
        """The store URL (opening the store from the test process)."""
        return self.store or sqlite_url(self.cwd / "bearer-grpc-data")

    @property
    def sqlite_file(self) -> Path:
        """The SQLite database file (SQLite deployments only)."""
        return self.cwd / "bearer-grpc-data" / "bearer-grpc.db"

    @property
    def target(self) -> str:
        """``127.0.0.1:PORT``, the same across restarts."""
        assert self.port, "never started"
        return f"127.0.0.1:{self.port}"

    def cli(self) -> Cli:
        """Runs ``bearer-grpc`` commands against this store."""
        return Cli(self.cwd, env=self.env)

    def add_client(self, name: str) -> str:
        """Add a client allowed the audience ``orders`` (straight to the store, as
        ``clients add`` does, without the subprocess); returns its secret."""
        store = open_store(self.url)
        try:
            return Admin(store).add_client(name, scopes=(), audiences=(AUDIENCE,)).client_secret
        finally:
            store.close()

    def start(self) -> ServeProcess:
        """Start the server (on the same port as before) and wait until it listens."""
        assert self.server is None, "already running"
        self.server = start_server(
            self.cwd, *SERVE_ARGS, env=self.env, listen=f"127.0.0.1:{self.port}"
        )
        self.port = self.server.port
        return self.server

    def kill(self) -> None:
        """``kill -9`` the server and reap it."""
        server = self._take()
        server.signal(signal.SIGKILL)
        assert server.wait() == -signal.SIGKILL

    def stop(self) -> None:
        """SIGTERM the server and wait for a clean exit."""
        assert self._take().stop() == 0

    def _take(self) -> ServeProcess:
        server, self.server = self.server, None
        assert server is not None, "not running"
        self.stopped.append(server)
        return server

    def close(self) -> None:
        """Kill whatever still runs."""
        for server in [*self.stopped, *([self.server] if self.server else [])]:
            server.kill()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """A SQLite deployment in ``tmp_path`` (not started)."""
    built = Deployment(tmp_path)
    yield built
    built.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """A deployment on each backend (PostgreSQL when ``BEARER_GRPC_TEST_PG_DSN`` is set)."""
    if request.param == "sqlite":
        built = Deployment(tmp_path)
        yield built
        built.close()
        return
    with pg_schema_url(pg_dsn()) as url:
        built = Deployment(tmp_path, store=url)
        yield built
        built.close()


class StandIn:
    """Holds a TokenService address while the service is down: every call is answered
    UNAVAILABLE and counted by method name (``IssueToken``, ``WatchRevocations``...)."""

    def __init__(self, target: str) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=4), handlers=[self._Handler(self)]
        )
        assert self._server.add_insecure_port(target) != 0, f"{target} is taken"
        self._server.start()

    class _Handler(grpc.GenericRpcHandler):
        def __init__(self, owner: StandIn) -> None:
            self._owner = owner

        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any]:
            name = details.method.rsplit("/", 1)[-1]  # type: ignore[attr-defined]
            with self._owner._lock:
                self._owner.calls[name] += 1

            def refuse(_request: bytes, context: grpc.ServicerContext) -> bytes:
                context.abort(grpc.StatusCode.UNAVAILABLE, "no healthy upstream")

            if name == "WatchRevocations":
                return grpc.unary_stream_rpc_method_handler(refuse)
            return grpc.unary_unary_rpc_method_handler(refuse)

    def count(self, method: str) -> int:
        """Calls of ``method`` so far."""
        with self._lock:
            return self.calls[method]

    def stop(self) -> None:
        """Close the port."""
        self._server.stop(None).wait()


@contextmanager
def stand_in(target: str) -> Iterator[StandIn]:
    """A :class:`StandIn` on ``target`` for the block."""
    held = StandIn(target)
    try:
        yield held
    finally:
        held.stop()


def build_verifier(flavour: str, build: str, target: str, **options: Any) -> Any:
    """``Verifier.<build>(target, audience="orders", ...)`` of ``flavour`` (sync or aio)."""
    cls: Any = Verifier if flavour == "sync" else bearer_aio.Verifier
    return getattr(cls, build)(target, audience=AUDIENCE, **options)


def close_verifier(verifier: Any, loop: LoopThread | None) -> None:
    """Stop a verifier's background work (aio: on its loop)."""
    if loop is None:
        verifier.close()
    else:
        loop.run(verifier.aclose())


def echo_status(target: str, kind: Kind, token: str | None) -> grpc.StatusCode:
    """Call the Echo method of ``kind`` with ``token``; the status it ended with."""
    with grpc.insecure_channel(target) as channel:
        try:
            call(channel, kind, metadata=bearer(token) if token else (), timeout=TIMEOUT)
        except grpc.RpcError as err:
            code: grpc.StatusCode = err.code()  # type: ignore[attr-defined]
            return code
    return grpc.StatusCode.OK


def issue_token(stub: pb_grpc.TokenServiceStub, client_id: str, secret: str) -> str:
    """IssueToken with client credentials; the access token."""
    grant = pb.ClientCredentialsGrant(client_id=client_id, client_secret=secret)
    response = stub.IssueToken(pb.IssueTokenRequest(client_credentials=grant), timeout=TIMEOUT)
    token: str = response.access_token
    return token


@contextmanager
def token_stub(target: str) -> Iterator[pb_grpc.TokenServiceStub]:
    """A TokenService stub on a fresh channel to ``target``."""
    with grpc.insecure_channel(target) as channel:
        yield pb_grpc.TokenServiceStub(channel)
