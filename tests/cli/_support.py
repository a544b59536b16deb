"""Running the real ``bearer-grpc`` executable: one-shot commands and served processes.

Every command runs as ``sys.executable -m bearer_grpc`` (the interpreter running the tests)
in a temporary directory, with an environment copied from ours minus every
``BEARER_GRPC_*`` variable, plus what the test sets.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
ENV_PREFIX = "BEARER_GRPC_"
ERROR_PREFIX = "bearer-grpc: error:"
COMMAND_TIMEOUT = 30.0
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without ``BEARER_GRPC_*`` variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(extra or {})
    return env


def command(*args: str) -> list[str]:
    """The argv of ``bearer-grpc ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "bearer_grpc", *args]


@dataclass
class Cli:
    """Runs ``bearer-grpc`` commands in ``cwd`` with ``env`` added to a clean environment."""

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        umask: int = -1,
        timeout: float = COMMAND_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run one command; stdin is ``input`` (or empty), output is captured."""
        return subprocess.run(
            command(*args),
            cwd=self.cwd,
            env=clean_env({**self.env, **(env or {})}),
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
            umask=umask,
            check=False,
        )

    def ok(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run a command that must succeed."""
        result = self(*args, **kwargs)
        assert result.returncode == 0, describe(result)
        assert "Traceback" not in result.stderr, describe(result)
        return result


@functools.cache
def help_text(*args: str) -> str:
    """``bearer-grpc ARGS --help`` (cached: help does not change during a run)."""
    with tempfile.TemporaryDirectory() as cwd:
        return Cli(Path(cwd)).ok(*args, "--help").stdout


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """The command, exit status and output, for assertion messages."""
    return (
        f"{result.args!r} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """The command failed with ``status``, printing exactly one ``bearer-grpc: error:`` line
    on stderr and no traceback. Returns that line."""
    assert result.returncode == status, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, describe(result)
    assert lines[0].startswith(ERROR_PREFIX), describe(result)
    return lines[0]


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects among the lines of ``text`` (gRPC's own log lines are skipped)."""
    out = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                out.append(value)
    return out


class ServerProcess:
    """A ``bearer-grpc serve`` subprocess whose stderr goes to a log file."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log
        self.listening: dict[str, Any] = {}

    @property
    def port(self) -> int:
        """The bound port, from the ``listening`` log line."""
        port: int = self.listening["port"]
        return port

    @property
    def target(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def stderr(self) -> str:
        """Everything the server wrote on stderr so far."""
        return self.log.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        """The server's JSON log lines so far."""
        return json_lines(self.stderr())

    def wait_listening(self, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """Wait for the ``listening`` line; fail with the stderr if the process exits."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.records():
                if record.get("message") == "listening":
                    self.listening = record
                    return record
            status = self.proc.poll()
            if status is not None:
                raise AssertionError(f"server exited {status} before listening:\n{self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"server not listening within {timeout} s:\n{self.stderr()}")
            time.sleep(0.02)

    def wait_exit_or_listening(self, timeout: float = START_TIMEOUT) -> int | None:
        """The exit status if the process ends first, None if it starts listening first."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.proc.poll()
            if status is not None:
                return status
            if any(r.get("message") == "listening" for r in self.records()):
                return None
            if time.monotonic() > deadline:
                raise AssertionError(f"server neither listening nor exited:\n{self.stderr()}")
            time.sleep(0.02)

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the server."""
        self.proc.send_signal(sig)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the process to exit; returns its status."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as err:
            raise AssertionError(f"server still running after {timeout} s") from err

    def stop(self) -> int:
        """SIGTERM and wait for the exit status."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        """SIGKILL (if still running) and reap."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(STOP_TIMEOUT)

    def channel(self, **kwargs: Any) -> grpc.Channel:
        """A plaintext channel to the server (close it, or use it as a context manager)."""
        return grpc.insecure_channel(self.target, **kwargs)


def start_server(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    listen: str | None = "127.0.0.1:0",
    umask: int = -1,
    wait: bool = True,
) -> ServerProcess:
    """Start ``bearer-grpc serve ARGS`` in ``cwd`` and (by default) wait until it listens.

    The caller must stop or kill it; prefer :func:`running_server`.
    """
    fd, name = tempfile.mkstemp(prefix="serve-", suffix=".log", dir=cwd)
    argv = command("serve", *(["--listen", listen] if listen else []), *args)
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            umask=umask,
        )
    server = ServerProcess(proc, Path(name))
    if wait:
        try:
            server.wait_listening()
        except BaseException:
            server.kill()
            raise
    return server


@contextlib.contextmanager
def running_server(cwd: Path, *args: str, **kwargs: Any) -> Iterator[ServerProcess]:
    """A listening ``bearer-grpc serve`` subprocess, killed on exit if still running."""
    server = start_server(cwd, *args, **kwargs)
    try:
        yield server
    finally:
        server.kill()


def health_status(target: str, service: str = "", timeout: float = 5.0) -> int:
    """``grpc.health.v1.Health/Check`` on a fresh channel."""
    with grpc.insecure_channel(target) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    status: int = response.status
    return status


def token_stub(channel: grpc.Channel) -> pb_grpc.TokenServiceStub:
    """A TokenService stub."""
    return pb_grpc.TokenServiceStub(channel)


def secret_of(result: subprocess.CompletedProcess[str]) -> str:
    """The ``client_secret`` of a ``clients add --json`` result."""
    secret: str = json.loads(result.stdout)["client_secret"]
    return secret


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
