"""The mesh under test: the TokenService's tokens for the mesh client, ``authz`` with a
policy and Envoy in front of the Node echo service (:func:`stack`), and one call through it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from bearer_grpc.core.tokens import issue_access_token
from bearer_grpc.service.admin import NewClient
from tests.harness import RunningService
from tests.mesh._support import Authz, Envoy, sidecar_config

AUDIENCE = "echo"
ECHO = "/mesh.v1.Echo/Unary"
REQUEST = b"\n\x05hello"  # mesh.v1.EchoRequest{text: "hello"}
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


def call(channel: grpc.Channel, token: str | None) -> grpc.StatusCode:
    """One Unary call through Envoy; its status code."""
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    try:
        channel.unary_unary(ECHO)(REQUEST, metadata=metadata, timeout=5)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK
