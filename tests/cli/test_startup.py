"""The command line imports only what a command needs, so that it starts fast.

Each command runs in a fresh interpreter (``bearer_grpc.cli.main``), which then reports
which heavy modules it loaded. The parser, ``--help`` and ``--version`` load none of them;
``token`` loads gRPC and protobuf but no database, HTTP server or JWT module. Timings are
``scripts/bench --only cli``'s, never a test's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.harness import RunningService, clean_env, running_service

pytestmark = pytest.mark.process

HEAVY = ("grpc", "google.protobuf", "cryptography", "jwt", "sqlalchemy", "aiohttp")
"""What a parser needs none of (each costs tens of milliseconds to import)."""
TOKEN_NEEDS_NONE_OF = ("sqlalchemy", "aiohttp", "prometheus_client", "jwt", "cryptography")
"""What ``token`` commands, a gRPC client of the TokenService, never import."""

PROBE = """
import json, sys
from bearer_grpc.cli import build_parser, main
heavy = json.loads(sys.argv[1])
status = 0
try:
    if len(sys.argv) > 2:
        status = main(sys.argv[2:])
    else:
        build_parser()
except SystemExit as exit:
    status = exit.code
print()
print(json.dumps({"status": status, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def _loaded(*args: str, watch: tuple[str, ...] = HEAVY, env: Mapping[str, str] = {}) -> list[str]:
    """Which of ``watch`` a fresh interpreter loaded running ``bearer-grpc ARGS``
    (no ARGS: building the parser); the command must succeed."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(watch), *args],
        capture_output=True,
        text=True,
        env=clean_env(env),
        timeout=60,
        check=True,
    )
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["status"] in (0, None), done.stdout + done.stderr
    loaded: list[str] = report["loaded"]
    return loaded


@pytest.mark.parametrize(
    "args",
    [(), ("--help",), ("--version",), ("token", "--help"), ("token", "verify", "--help")],
    ids=["parser", "help", "version", "token-help", "token-verify-help"],
)
def test_parser_help_and_version_import_nothing_heavy(args: tuple[str, ...]) -> None:
    assert _loaded(*args) == []


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """A real TokenService on SQLite for ``token verify`` to call."""
    path = tmp_path_factory.mktemp("startup") / "tokens.db"
    with running_service(f"sqlite:///{Path(path)}") as running:
        yield running


def test_token_verify_loads_no_store_or_jwt(service: RunningService) -> None:
    token = service.issue(service.add_client()).access_token
    args = ("token", "verify", "--target", service.target, "--audience", "orders")
    watch = ("grpc", "google.protobuf", "google.protobuf.json_format", *TOKEN_NEEDS_NONE_OF)
    loaded = _loaded(*args, watch=watch, env={"BEARER_GRPC_TOKEN": token})
    assert loaded == ["grpc", "google.protobuf"]  # the call itself, and nothing more
    loaded = _loaded(*args, "--json", watch=watch, env={"BEARER_GRPC_TOKEN": token})
    assert loaded == ["grpc", "google.protobuf", "google.protobuf.json_format"]


def test_help_lists_every_command_without_loading_them() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bearer_grpc", "--help"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=True,
    )
    for command in ("serve", "clients", "users", "keys", "token", "authz"):
        assert f"\n    {command} " in done.stdout, command
