"""Fixtures of the stolen-credential tests: a TokenService on each store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bearer_grpc.store import sqlite_url
from tests.cli._support import Cli
from tests.harness import RunningService
from tests.service.conftest import serving
from tests.store.conftest import pg_dsn, pg_schema_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store on each backend: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "data")
    else:
        with pg_schema_url(pg_dsn()) as url:
            yield url


@pytest.fixture
def any_service(backend_url: str) -> Iterator[RunningService]:
    """A TokenService on each backend."""
    with serving(backend_url) as running:
        yield running


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Runs ``bearer-grpc`` in ``tmp_path`` (default data dir ``tmp_path/bearer-grpc-data``)."""
    return Cli(tmp_path)
