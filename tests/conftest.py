"""Fixtures shared by the whole suite: a real TokenService on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bearer_grpc.store import sqlite_url
from tests.harness import RunningService, running_service


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh data directory (not created yet)."""
    return tmp_path / "bearer-grpc-data"


@pytest.fixture
def service(data_dir: Path) -> Iterator[RunningService]:
    """A TokenService on an embedded SQLite store in a temporary data directory."""
    with running_service(sqlite_url(data_dir)) as running:
        yield running
