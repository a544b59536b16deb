"""Fixtures of the AdminService tests: a real TokenService on each store (SQLite always,
PostgreSQL when ``BEARER_GRPC_TEST_PG_DSN`` is set), on a frozen clock the tests move,
and admin callers with tokens it issued."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from bearer_grpc import BearerClientInterceptor, StaticToken
from bearer_grpc.service.admin import NewClient
from bearer_grpc.store import sqlite_url
from bearer_grpc.testing import FrozenClock
from bearer_grpc.v1 import admin_service_pb2_grpc as admin_grpc
from tests.harness import Cli, RunningService, pg_dsn, pg_schema_url, running_service

ADMIN = "bearer-grpc:admin"
SECRETS = "bearer-grpc:admin:secrets"
KEYS = "bearer-grpc:admin:keys"
EVERY_ADMIN_SCOPE = (ADMIN, SECRETS, KEYS)
AUDIENCE = "bearer-grpc"


@dataclass
class AdminCaller:
    """A client with admin scopes, its token, and an AdminService stub carrying it."""

    client: NewClient
    token: str
    stub: admin_grpc.AdminServiceStub

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The call metadata with the token."""
        return (("authorization", f"Bearer {self.token}"),)


@dataclass
class AdminEnv:
    """A running service, its frozen clock and its store URL."""

    service: RunningService
    clock: FrozenClock
    url: str

    def channel(self) -> grpc.Channel:
        """A channel to the service (closed with it)."""
        channel = grpc.insecure_channel(self.service.target)
        self.service.channels.append(channel)
        return channel

    def stub(self, token: str | None = None) -> admin_grpc.AdminServiceStub:
        """An AdminService stub; with ``token``, every call carries it."""
        channel = self.channel()
        if token is not None:
            channel = grpc.intercept_channel(channel, BearerClientInterceptor(StaticToken(token)))
        return admin_grpc.AdminServiceStub(channel)

    def caller(
        self,
        scopes: Sequence[str] = EVERY_ADMIN_SCOPE,
        audiences: Sequence[str] = (AUDIENCE,),
        name: str | None = None,
    ) -> AdminCaller:
        """A new client with ``scopes`` and a token for its first audience."""
        client = self.service.add_client(name, tuple(scopes), tuple(audiences))
        token = self.service.issue(client).access_token
        return AdminCaller(client, token, self.stub(token))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store on each backend."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "data")
    else:
        with pg_schema_url(pg_dsn()) as url:
            yield url


@pytest.fixture
def env(store_url: str) -> Iterator[AdminEnv]:
    """A TokenService (with its AdminService) on the store, on a frozen clock."""
    clock = FrozenClock(float(int(time.time())))
    with running_service(store_url, clock=clock) as service:
        yield AdminEnv(service, clock, store_url)


@pytest.fixture
def admin(env: AdminEnv) -> AdminCaller:
    """A caller with every admin scope."""
    return env.caller(name="root")


PASSWORD = "a long and unusual passphrase 7"
CLI_ADMIN_SCOPES = "bearer-grpc:admin,bearer-grpc:admin:secrets,bearer-grpc:admin:keys"


@dataclass
class Modes:
    """The same commands on the store (``direct``) and through a server (``remote``)."""

    cli: Cli
    url: str
    target: str
    env: dict[str, str]
    service: RunningService | None = None

    def direct(self, *args: str, input: str | None = None) -> str:
        """Run a command on the store; its stdout."""
        return self.cli.ok(*args, "--store", self.url, input=input).stdout

    def remote(self, *args: str, input: str | None = None) -> str:
        """Run a command through the server; its stdout."""
        return self.cli.ok(*args, "--target", self.target, env=self.env, input=input).stdout


def bootstrap_admin(cli: Cli, url: str) -> dict[str, str]:
    """The first admin client, made on the store; its credentials as the environment."""
    out = cli.ok(
        "clients", "add", "ops", "--audiences", "bearer-grpc", "--scopes", CLI_ADMIN_SCOPES,
        "--store", url, "--json",
    ).stdout  # fmt: skip
    made = json.loads(out)
    return {
        "BEARER_GRPC_CLIENT_ID": made["client_id"],
        "BEARER_GRPC_CLIENT_SECRET": made["client_secret"],
    }


@pytest.fixture
def modes(store_url: str, tmp_path: Path) -> Iterator[Modes]:
    cli = Cli(tmp_path)
    with running_service(store_url) as service:
        env = bootstrap_admin(cli, store_url)
        yield Modes(cli, store_url, service.target, env, service)
