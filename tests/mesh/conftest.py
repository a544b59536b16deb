"""Fixtures of the mesh tests: a TokenService, the Node echo service, ``bearer-grpc authz``
following that TokenService, and Envoy (the README's configuration) in front of them.

One of each serves a whole module; tests that kill or pause ``authz``, or need another
policy, build their own with :func:`stack`.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bearer_grpc.core.tokens import issue_access_token
from bearer_grpc.service.admin import NewClient
from bearer_grpc.store import sqlite_url
from tests.harness import RunningService, running_service
from tests.mesh._support import Authz, Envoy, echo_service, sidecar_config

pytestmark = pytest.mark.process

AUDIENCE = "echo"
POLICY = """\
public = ["/grpc.health.v1.Health/*"]

[scopes]
"/mesh.v1.Echo/*" = ["echo.read"]
"/orders/*" = ["orders.read"]
"""


@dataclass
class Tokens:
    """Issues tokens of the mesh client from the real TokenService."""

    service: RunningService
    client: NewClient

    def issue(self, scopes: tuple[str, ...] = ("echo.read",), audience: str = AUDIENCE) -> str:
        """An access token from IssueToken."""
        answer = self.service.issue(self.client, scopes=list(scopes), audience=audience)
        return answer.access_token

    def expired(self) -> str:
        """A token signed by the service's own key that expired an hour ago."""
        authority = self.service.authority
        now = int(time.time())
        return issue_access_token(
            authority.keys.signing_key(now),
            issuer=authority.settings.issuer,
            subject=self.client.client_id,
            audience=AUDIENCE,
            scopes=("echo.read",),
            client_id=self.client.client_id,
            lifetime=60,
            now=now - 3600,
        ).token

    def revoke(self, token: str) -> None:
        """RevokeToken, by the token itself (its holder may)."""
        from bearer_grpc.v1 import token_service_pb2 as pb

        self.service.stub().RevokeToken(pb.RevokeTokenRequest(token=token), timeout=10)


@dataclass
class Stack:
    """``authz`` and Envoy in front of the echo service."""

    authz: Authz
    envoy: Envoy

    @property
    def target(self) -> str:
        """Where clients call: Envoy's listener."""
        return self.envoy.target()


@pytest.fixture(scope="module")
def token_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """A TokenService on a fresh SQLite store."""
    with running_service(sqlite_url(tmp_path_factory.mktemp("tokens") / "data")) as service:
        yield service


@pytest.fixture(scope="module")
def tokens(token_service: RunningService) -> Tokens:
    """The mesh client (echo.read, orders.read; audiences echo and other) and its tokens."""
    client = token_service.add_client(
        "mesh-client", scopes=("echo.read", "orders.read"), audiences=(AUDIENCE, "other")
    )
    return Tokens(token_service, client)


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    """The Node echo service's port (skipped without node)."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    with echo_service() as port:
        yield port


@contextlib.contextmanager
def stack(
    directory: Path, token_service: RunningService, echo_port: int, policy: str = POLICY
) -> Iterator[Stack]:
    """``authz`` (following ``token_service``, with ``policy``) and Envoy, stopped after."""
    (directory / "policy.toml").write_text(policy)
    args = ["--audience", AUDIENCE, "--token-service", token_service.target]
    authz = Authz(directory, [*args, "--policy", "policy.toml"])
    try:
        envoy = Envoy(sidecar_config(echo_port, authz.port), directory)
        try:
            yield Stack(authz, envoy)
        finally:
            envoy.stop()
    finally:
        authz.kill()


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, token_service: RunningService, echo_port: int
) -> Iterator[Stack]:
    """The module's stack, with the default test policy."""
    with stack(tmp_path_factory.mktemp("mesh"), token_service, echo_port) as running:
        yield running
