"""Fixtures of the mesh tests: a TokenService, the Node echo service, ``bearer-grpc authz``
following that TokenService, and Envoy (the README's configuration) in front of them.

One of each serves a whole module; tests that kill or pause ``authz``, or need another
policy, build their own with ``tests.mesh._stack.stack``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from bearer_grpc.store import sqlite_url
from tests.harness import RunningService, running_service
from tests.mesh._stack import AUDIENCE, Stack, Tokens, stack
from tests.mesh._support import echo_service

pytestmark = pytest.mark.process


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


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, token_service: RunningService, echo_port: int
) -> Iterator[Stack]:
    """The module's stack, with the default test policy."""
    with stack(tmp_path_factory.mktemp("mesh"), token_service, echo_port) as running:
        yield running
