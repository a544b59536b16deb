"""A fleet: several real ``bearer-grpc serve`` processes sharing one PostgreSQL schema.

Every test here needs PostgreSQL (``BEARER_GRPC_TEST_PG_DSN``) and is skipped without it.
The three replicas of :func:`fleet` are shared by the tests of a module (starting them is
the expensive part); they run with ``--sync-interval 30``, so anything that reaches a
replica within a second got there by ``LISTEN/NOTIFY`` (or the catch-up after the
listener reconnected), not by the periodic read. Tests that kill or cut a replica start
their own.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from bearer_grpc.core.secrets import hash_password
from bearer_grpc.service.admin import Admin, NewClient
from bearer_grpc.store import Account, AccountKind, SqlStore, open_store
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import Cli, ServeProcess, pg_dsn, pg_schema_url, start_server

PASSWORD = "correct horse battery staple"
AUDIENCE = "orders"
SCOPES = ("orders.read", "orders.write")
START_TIMEOUT = 60.0
"""Deadline for several replicas starting at once on a busy two-core machine."""
SLOW_POLL = "30"
"""``--sync-interval`` of the shared replicas: only notifications explain a fast arrival."""


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


@dataclass
class Fleet:
    """Replicas on one store, and what the tests need to reach them.

    Attributes:
        url: The store URL (a schema of its own).
        cwd: Working directory of the processes (their log files live here).
        env: Environment of every process (the key-encryption key).
        replicas: Name to process (``a``, ``b``, ``c``).
        client: A client allowed audience ``orders``.
    """

    url: str
    cwd: Path
    env: dict[str, str]
    replicas: dict[str, ServeProcess] = field(default_factory=dict)
    client: NewClient | None = None
    channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def cli(self) -> Cli:
        """``bearer-grpc`` commands with the fleet's environment."""
        return Cli(self.cwd, dict(self.env))

    def serve_args(self, *extra: str) -> list[str]:
        """Arguments of a replica of this fleet."""
        return ["--store", self.url, "--grace", "1", "--issuer", "fleet", *extra]

    def stub(self, target: str) -> pb_grpc.TokenServiceStub:
        """A TokenService stub on a fresh channel to ``target`` (closed at teardown)."""
        channel = grpc.insecure_channel(target)
        self.channels.append(channel)
        return pb_grpc.TokenServiceStub(channel)

    def at(self, name: str) -> pb_grpc.TokenServiceStub:
        """A stub for replica ``name``."""
        return self.stub(self.replicas[name].target)

    def issue(self, name: str) -> str:
        """An access token for ``orders`` issued by replica ``name`` (client credentials)."""
        assert self.client is not None
        request = pb.IssueTokenRequest(
            client_credentials=pb.ClientCredentialsGrant(
                client_id=self.client.client_id, client_secret=self.client.client_secret
            )
        )
        response: pb.IssueTokenResponse = self.at(name).IssueToken(request, timeout=10)
        return response.access_token

    def verify(self, name: str, token: str) -> pb.VerifyTokenResponse:
        """VerifyToken for audience ``orders`` at replica ``name``."""
        request = pb.VerifyTokenRequest(token=token, audience=AUDIENCE)
        response: pb.VerifyTokenResponse = self.at(name).VerifyToken(request, timeout=10)
        return response

    @contextmanager
    def store(self) -> Iterator[SqlStore]:
        """The fleet's store, opened by the test process."""
        store = open_store(self.url)
        try:
            yield store
        finally:
            store.close()

    def pids(self, application: str, pid: int) -> list[int]:
        """Backend pids of process ``pid``'s sessions named ``application``."""
        with psycopg.connect(pg_dsn(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                (f"{application}/{pid}",),
            ).fetchall()
        return [int(row[0]) for row in rows]

    def terminate(self, application: str, pid: int) -> list[int]:
        """``pg_terminate_backend`` every session of process ``pid`` named ``application``."""
        pids = self.pids(application, pid)
        with psycopg.connect(pg_dsn(), autocommit=True) as conn:
            for backend in pids:
                conn.execute("SELECT pg_terminate_backend(%s)", (backend,))
        return pids


def add_user(store: SqlStore, name: str) -> None:
    """A user with :data:`PASSWORD` (hashed once per session)."""
    store.add_account(
        Account(
            name=name,
            kind=AccountKind.USER,
            credential_hash=_password_hash(),
            scopes=SCOPES,
            audiences=(AUDIENCE,),
            created_at=int(time.time()),
        )
    )


def start_replicas(fleet: Fleet, names: list[str], *extra: str) -> list[ServeProcess]:
    """Start replicas concurrently and wait until each listens."""
    started = [
        start_server(fleet.cwd, *fleet.serve_args(*extra), env=fleet.env, wait=False) for _ in names
    ]
    try:
        for server in started:
            server.wait_listening(timeout=START_TIMEOUT)
    except BaseException:
        for server in started:
            server.kill()
        raise
    fleet.replicas.update(zip(names, started, strict=True))
    return started


@contextmanager
def new_fleet(tmp: Path, *names: str, **serve: Any) -> Iterator[Fleet]:
    """A fleet on a fresh schema with a client, a user ``alice`` and ``names`` replicas."""
    with pg_schema_url(pg_dsn()) as url, ExitStack() as cleanup:
        fleet = Fleet(url, tmp, {"BEARER_GRPC_KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32)})
        with fleet.store() as store:
            fleet.client = Admin(store).add_client(
                "orders-client", scopes=list(SCOPES), audiences=[AUDIENCE]
            )
            add_user(store, "alice")
        cleanup.callback(_stop_all, fleet)
        if names:
            start_replicas(fleet, list(names), *serve.get("extra", ()))
        yield fleet


def _stop_all(fleet: Fleet) -> None:
    for channel in fleet.channels:
        channel.close()
    for server in fleet.replicas.values():
        try:
            server.stop()
        finally:
            server.kill()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Replicas ``a``, ``b`` and ``c`` on one fresh schema, polling only every 30 s."""
    pg_dsn()
    with new_fleet(
        tmp_path_factory.mktemp("fleet"), "a", "b", "c", extra=("--sync-interval", SLOW_POLL)
    ) as running:
        yield running
