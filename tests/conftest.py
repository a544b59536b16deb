"""Fixtures shared by the whole suite: a real TokenService on a free port, the
``bearer-grpc`` command line in a temporary directory; and a guard that keeps the
``process`` marker true (``scripts/test --fast`` relies on it).

``service`` is the test's own: use it where a test moves the service's clock, rotates its
keys, breaks its store or counts its requests; ``any_service`` is one on each store
backend (``backend_url``). Elsewhere take ``unique_client`` (or
``shared_service``): one service per test module, and a client of the test's own, so no
test sees another's tokens or revocations.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bearer_grpc.service.admin import NewClient
from bearer_grpc.store import sqlite_url
from tests.harness import BACKENDS, Cli, RunningService, running_service
from tests.harness import backend_url as empty_store


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh data directory (not created yet)."""
    return tmp_path / "bearer-grpc-data"


@pytest.fixture
def service(data_dir: Path) -> Iterator[RunningService]:
    """A TokenService of the test's own, on SQLite in a temporary data directory."""
    with running_service(sqlite_url(data_dir)) as running:
        yield running


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store on each backend: SQLite always, PostgreSQL when configured."""
    with empty_store(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def any_service(backend_url: str) -> Iterator[RunningService]:
    """A TokenService of the test's own on each backend."""
    with running_service(backend_url) as running:
        yield running


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """A TokenService on SQLite shared by the tests of one module."""
    with running_service(sqlite_url(tmp_path_factory.mktemp("shared") / "data")) as running:
        yield running


@pytest.fixture
def unique_client(shared_service: RunningService) -> NewClient:
    """A client of ``shared_service`` that no other test uses (scopes ``orders.read``
    and ``orders.write``, audience ``orders``)."""
    return shared_service.add_client()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Runs ``bearer-grpc`` commands in this process, in ``tmp_path`` (default data dir
    ``tmp_path/bearer-grpc-data``, the ``data_dir`` fixture)."""
    return Cli(tmp_path)


@pytest.fixture
def process_cli(tmp_path: Path) -> Cli:
    """Like ``cli``, each command a real ``python -m bearer_grpc`` (mark the test
    ``process``): for what a shell sees, such as exit codes and warnings on stderr."""
    return Cli(tmp_path, process=True)


@pytest.fixture(autouse=True)
def _processes_are_marked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test not marked ``process`` that starts a child process fails, naming the marker."""
    if request.node.get_closest_marker("process") is not None:
        return

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{request.node.nodeid} starts a process: mark it process")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
