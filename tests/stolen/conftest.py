"""Fixtures of the stolen-credential tests: a TokenService on each store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import BACKENDS, RunningService, running_service
from tests.harness import backend_url as empty_store


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store on each backend: SQLite always, PostgreSQL when configured."""
    with empty_store(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def any_service(backend_url: str) -> Iterator[RunningService]:
    """A TokenService on each backend."""
    with running_service(backend_url) as running:
        yield running
