"""Fixtures of the stolen-credential tests: a TokenService on each store backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.conftest import cli
from tests.harness import RunningService
from tests.service.conftest import serving
from tests.store.conftest import store_url


@pytest.fixture
def backend_url(store_url: str) -> str:
    """An empty store on each backend: SQLite always, PostgreSQL when configured."""
    return store_url


@pytest.fixture
def any_service(backend_url: str) -> Iterator[RunningService]:
    """A TokenService on each backend."""
    with serving(backend_url) as running:
        yield running


__all__ = ["cli", "store_url"]  # the CLI and store suites' fixtures, shared
