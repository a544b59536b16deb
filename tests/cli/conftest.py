"""Fixtures of the CLI tests: command runners in a temporary directory.

``cli`` (tests/conftest.py, shared) runs each command in this process
(``bearer_grpc.cli.main``); ``process_cli`` as a real ``python -m bearer_grpc``, for the
few tests of what a shell sees: exit codes, one-line errors without a traceback, real
stdin and environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import Cli


@pytest.fixture
def process_cli(tmp_path: Path) -> Cli:
    """Like ``cli``, each command a real process."""
    return Cli(tmp_path, process=True)
