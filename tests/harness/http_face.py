"""A TokenService with its OAuth 2.0 HTTP face on 127.0.0.1 (:func:`http_service`), with
registered clients and a user, and requests to it (:class:`Http`)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.service.admin import NewClient
from bearer_grpc.service.http import HttpLimits
from bearer_grpc.service.server import ServeConfig
from bearer_grpc.service.settings import INTROSPECT_SCOPE, ServiceSettings
from bearer_grpc.store import sqlite_url
from tests.harness.grants import PASSWORD
from tests.harness.service import RunningService, running_service

HTTP_AUDIENCE: Final = "orders"
"""The audience :func:`http_service`'s client and user may ask for (besides ``billing``)."""
HTTP_SCOPES: Final = ("orders.read", "orders.write")
"""The scopes :func:`http_service`'s client and user may have."""


@dataclass
class Http:
    """A running TokenService with its HTTP face, and who may use it."""

    service: RunningService
    base: str
    client: NewClient
    introspector: NewClient
    user: str = "alice"

    @property
    def issuer(self) -> str:
        """The issuer URL (also the HTTP face's root)."""
        return self.base

    def url(self, path: str) -> str:
        """The absolute URL of ``path``."""
        return self.base + path

    def post(self, path: str, data: Any = None, **kwargs: Any) -> httpx.Response:
        """POST to ``path`` with a fresh httpx client (no retries, no redirects)."""
        with httpx.Client(timeout=10) as client:
            return client.post(self.url(path), data=data, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET ``path``."""
        with httpx.Client(timeout=10) as client:
            return client.get(self.url(path), **kwargs)

    def client_token(self, **form: str) -> dict[str, Any]:
        """A client-credentials token answer for :attr:`client` (Basic authentication)."""
        response = self.post(
            "/token",
            {"grant_type": "client_credentials", **form},
            auth=(self.client.client_id, self.client.client_secret),
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer


def free_port() -> int:
    """A port of 127.0.0.1 free at the time of asking (the issuer URL must name it
    before the server binds)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def http_service(
    data_dir: Path,
    *,
    limits: HttpLimits | None = None,
    settings: dict[str, Any] | None = None,
    clock: Clock = system_clock,
) -> Iterator[Http]:
    """A TokenService on SQLite with its HTTP face (its time is ``clock``), a client, an
    introspecting client and a user with password :data:`PASSWORD`."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = ServeConfig(
        listen="127.0.0.1:0",
        grace=1,
        http_listen=f"127.0.0.1:{port}",
        http_limits=limits or HttpLimits(header_timeout=2.0, body_timeout=2.0),
    )
    chosen = ServiceSettings(issuer=base, **(settings or {}))
    with running_service(
        sqlite_url(data_dir), settings=chosen, config=config, clock=clock
    ) as service:
        client = service.add_client(
            "svc-a", scopes=HTTP_SCOPES, audiences=(HTTP_AUDIENCE, "billing")
        )
        introspector = service.add_client(
            "resource-server", scopes=(INTROSPECT_SCOPE,), audiences=(HTTP_AUDIENCE,)
        )
        service.admin.add_user("alice", PASSWORD, scopes=HTTP_SCOPES, audiences=(HTTP_AUDIENCE,))
        yield Http(service, base, client, introspector)
