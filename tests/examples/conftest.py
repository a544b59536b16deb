"""Fixtures of the example tests: one real ``bearer-grpc serve`` per module, the README's
clients registered in it, and the example servers as subprocesses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.examples._support import (
    ExampleServer,
    TokenService,
    clients_add_args,
    example_argv,
    start_token_service,
)
from tests.harness import Cli, ServeProcess


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the module's processes run (``bearer-grpc-data`` ends up here)."""
    return tmp_path_factory.mktemp("examples")


@pytest.fixture(scope="module")
def token_service(workdir: Path) -> Iterator[TokenService]:
    """``bearer-grpc serve`` on a free port with the clients examples/README.md adds."""
    process, target = start_token_service(workdir)
    try:
        cli = Cli(workdir)
        secrets = {}
        for name in ("shop", "shop-reader"):
            added = cli.ok(*clients_add_args(name))
            secrets[name] = json.loads(added.stdout)["client_secret"]
        yield TokenService(target, secrets)
        assert process.stop() == 0, process.output()
    finally:
        process.kill()


@pytest.fixture(scope="module", params=["server.py", "server_aio.py"])
def example_server(
    request: pytest.FixtureRequest, workdir: Path, token_service: TokenService
) -> Iterator[ExampleServer]:
    """The README's server command on port 0; stopped with SIGTERM, which must exit 0."""
    script: str = request.param
    argv = example_argv(script, tokens=token_service.target, listen="127.0.0.1:0")
    process = ServeProcess(argv, cwd=workdir)
    try:
        match = process.wait_for_line(r"^listening on (127\.0\.0\.1:\d+)$")
        yield ExampleServer(script, match.group(1), process)
        assert process.stop() == 0, process.output()
        assert "Traceback" not in "\n".join(process.lines("stderr")), process.output()
    finally:
        process.kill()
