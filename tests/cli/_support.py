"""What only the CLI tests use; running commands and servers is ``tests.harness``'s."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

from tests.harness import Cli, CliResult

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


@functools.cache
def help_text(*args: str) -> str:
    """``bearer-grpc ARGS --help`` (cached: help does not change during a run)."""
    with tempfile.TemporaryDirectory() as cwd:
        return Cli(Path(cwd)).ok(*args, "--help").stdout


def secret_of(result: CliResult) -> str:
    """The ``client_secret`` of a ``clients add --json`` result."""
    secret: str = json.loads(result.stdout)["client_secret"]
    return secret
