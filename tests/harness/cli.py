"""Running ``bearer-grpc`` commands: in this process (``bearer_grpc.cli.main``) or as real
processes."""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tests.harness.processes import ENV_PREFIX, bearer_grpc_command, clean_env

ERROR_PREFIX: Final = "bearer-grpc: error:"
"""How every error line of the command line starts."""
COMMAND_TIMEOUT: Final = 30.0
"""Longest one command run as a process may take, in seconds."""


@dataclass(frozen=True)
class CliResult:
    """How one ``bearer-grpc`` command ended (the fields of ``subprocess.CompletedProcess``).

    Attributes:
        args: The command's arguments.
        returncode: Its exit status.
        stdout: What it printed on stdout.
        stderr: What it printed on stderr.
    """

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


_IN_PROCESS = threading.Lock()
"""One in-process command at a time: it borrows the process's cwd, environment and stdio."""


def _exit_status(code: object) -> int:
    """The status ``SystemExit(code)`` ends a process with."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


@contextmanager
def _borrowed_process(cwd: Path, env: Mapping[str, str], stdin: str, umask: int) -> Iterator[None]:
    """This process's cwd, environment, stdin and umask as a child would have them."""
    saved_env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    saved_cwd, saved_stdin = os.getcwd(), sys.stdin
    saved_umask = os.umask(umask) if umask >= 0 else None
    try:
        for key in saved_env:
            del os.environ[key]
        os.environ.update(env)
        os.chdir(cwd)
        sys.stdin = io.StringIO(stdin)
        yield
    finally:
        sys.stdin = saved_stdin
        os.chdir(saved_cwd)
        for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
            del os.environ[key]
        os.environ.update(saved_env)
        if saved_umask is not None:
            os.umask(saved_umask)


@dataclass
class Cli:
    """Runs ``bearer-grpc`` commands in ``cwd``, with ``env`` added to an environment
    without ``BEARER_GRPC_*`` variables.

    By default a command runs in this process (``bearer_grpc.cli.main(args)``, with this
    process's cwd, environment, stdin, stdout, stderr and umask lent to it for the call),
    which costs no interpreter start; ``process=True`` runs each one as a real
    ``python -m bearer_grpc``, for the tests of exit codes and output as a shell sees them.
    """

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    process: bool = False

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        umask: int = -1,
        timeout: float = COMMAND_TIMEOUT,
    ) -> CliResult:
        """Run one command; stdin is ``input`` (or empty), output is captured."""
        extra = {**self.env, **(env or {})}
        if self.process:
            done = subprocess.run(
                bearer_grpc_command(*args),
                cwd=self.cwd,
                env=clean_env(extra),
                input=input or "",
                capture_output=True,
                text=True,
                timeout=timeout,
                umask=umask,
                check=False,
            )
            return CliResult(list(args), done.returncode, done.stdout, done.stderr)
        from bearer_grpc.cli import main

        out, err = io.StringIO(), io.StringIO()
        with (
            _IN_PROCESS,
            _borrowed_process(self.cwd, extra, input or "", umask),
            redirect_stdout(out),
            redirect_stderr(err),
        ):
            try:
                status = main(list(args))
            except SystemExit as exit_:  # argparse: usage errors, --help, --version
                status = _exit_status(exit_.code)
        return CliResult(list(args), status, out.getvalue(), err.getvalue())

    def ok(self, *args: str, **kwargs: Any) -> CliResult:
        """Run a command that must succeed."""
        result = self(*args, **kwargs)
        assert result.returncode == 0, describe(result)
        assert "Traceback" not in result.stderr, describe(result)
        return result


def describe(result: CliResult) -> str:
    """The command, exit status and output, for assertion messages."""
    return (
        f"bearer-grpc {shlex.join(result.args)} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def assert_one_line_error(result: CliResult, status: int = 1) -> str:
    """The command failed with ``status``, printing exactly one ``bearer-grpc: error:`` line
    on stderr and no traceback. Returns that line."""
    assert result.returncode == status, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, describe(result)
    assert lines[0].startswith(ERROR_PREFIX), describe(result)
    return lines[0]
