"""Fixtures of the CLI tests: a command runner in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli._support import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Runs ``bearer-grpc`` in ``tmp_path`` (default data dir ``tmp_path/bearer-grpc-data``)."""
    return Cli(tmp_path)
