"""Child processes read line by line: ``bearer-grpc serve``, the example servers, any command."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, Final, TypeVar

import grpc

_T = TypeVar("_T")

ENV_PREFIX: Final = "BEARER_GRPC_"
START_TIMEOUT: Final = 20.0
"""Longest a child may take to start listening, in seconds."""
STOP_TIMEOUT: Final = 15.0
"""Longest a child may take to exit, in seconds."""


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without ``BEARER_GRPC_*`` variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(extra or {})
    return env


def bearer_grpc_command(*args: str) -> list[str]:
    """The argv of ``bearer-grpc ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "bearer_grpc", *args]


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects among the lines of ``text`` (gRPC's own log lines are skipped)."""
    found = []
    for line in text.splitlines():
        with suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                found.append(value)
    return found


class ServeProcess:
    """A child process whose stdout and stderr are read line by line as they come.

    Reader threads collect each stream and wake waiters on every line and at end of file,
    so waiting for a line takes exactly as long as the process needs, and a process that
    dies early fails the wait at once, with its output. Runs ``bearer-grpc serve`` (see
    :func:`start_server`), the example servers, or any command.

    Args:
        argv: The command.
        cwd: Its working directory.
        env: Variables added to :func:`clean_env`.
        umask: The child's umask (-1: ours).

    Attributes:
        proc: The child.
        listening: The ``listening`` log record, once :meth:`wait_listening` saw it.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        umask: int = -1,
    ) -> None:
        self.argv = list(argv)
        self.listening: dict[str, Any] = {}
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=clean_env({"PYTHONFAULTHANDLER": "1", **(env or {})}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            umask=umask,
        )
        self._cond = threading.Condition()
        self._lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._open = 2
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=("stdout", self.proc.stdout), daemon=True),
            threading.Thread(target=self._read, args=("stderr", self.proc.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def __repr__(self) -> str:
        return f"ServeProcess({shlex.join(self.argv)!r}, returncode={self.proc.returncode})"

    def _read(self, name: str, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._cond:
                    self._lines[name].append(line.rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self._open -= 1
            self._cond.notify_all()

    def lines(self, stream: str = "stdout") -> list[str]:
        """The lines ``stream`` has had so far."""
        with self._cond:
            return list(self._lines[stream])

    def stderr(self) -> str:
        """Everything the child wrote on stderr so far."""
        return "\n".join(self.lines("stderr"))

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records on stderr so far (bearer-grpc logs one per line)."""
        return json_lines(self.stderr())

    def output(self) -> str:
        """The command and both streams so far, for assertion messages."""
        return (
            f"{shlex.join(self.argv)}\n--- stdout\n"
            + "\n".join(self.lines("stdout"))
            + "\n--- stderr\n"
            + self.stderr()
        )

    def _wait(self, found: Callable[[], _T | None], timeout: float) -> _T | None:
        """``found()`` once it is not None; None once both streams ended without it.

        Raises:
            AssertionError: The deadline passed (the message holds the output).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = found()
                if value is not None or self._open == 0:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"still running after {timeout} s:\n{self.output()}")
                self._cond.wait(remaining)

    def wait_for_line(
        self, pattern: str, *, stream: str = "stdout", timeout: float = START_TIMEOUT
    ) -> re.Match[str]:
        """The first line of ``stream`` matching ``pattern``, waiting up to ``timeout``.

        Raises:
            AssertionError: The child ended, or the deadline passed, without such a line.
        """
        regex = re.compile(pattern)

        def first() -> re.Match[str] | None:
            matches = (regex.search(line) for line in self._lines[stream])
            return next((match for match in matches if match), None)

        match = self._wait(first, timeout)
        if match is None:
            raise AssertionError(f"no line matching {pattern!r}; it ended:\n{self.output()}")
        return match

    def _listening(self) -> dict[str, Any] | None:
        records = json_lines("\n".join(self._lines["stderr"]))
        return next((r for r in records if r.get("message") == "listening"), None)

    def wait_listening(self, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """Wait for bearer-grpc's ``listening`` log record; fail if the child ends first."""
        record = self._wait(self._listening, timeout)
        if record is None:
            status = self.wait()
            raise AssertionError(f"exited {status} before listening:\n{self.output()}")
        self.listening = record
        return record

    def wait_exit_or_listening(self, timeout: float = START_TIMEOUT) -> int | None:
        """The exit status if the child ends first, None if it starts listening first."""
        if self._wait(self._listening, timeout) is not None:
            return None
        return self.wait()

    @property
    def port(self) -> int:
        """The bound port, from the ``listening`` record."""
        port: int = self.listening["port"]
        return port

    @property
    def target(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def channel(self, **kwargs: Any) -> grpc.Channel:
        """A plaintext channel to :attr:`target` (close it, or use it as a context manager)."""
        return grpc.insecure_channel(self.target, **kwargs)

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the child."""
        self.proc.send_signal(sig)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the exit and for the output to be read; returns the exit status.

        Raises:
            AssertionError: Still running after ``timeout`` seconds (it is killed).
        """
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired as err:
            self.kill()
            raise AssertionError(f"still running after {timeout} s:\n{self.output()}") from err
        for reader in self._readers:
            reader.join(timeout)
        return status

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM (if still running), then wait for the exit status."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL if still running, and reap."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(STOP_TIMEOUT)
        for reader in self._readers:
            reader.join(STOP_TIMEOUT)


def start_server(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    listen: str | None = "127.0.0.1:0",
    umask: int = -1,
    wait: bool = True,
) -> ServeProcess:
    """Start ``bearer-grpc serve ARGS`` in ``cwd`` and (by default) wait until it listens.

    The caller must stop or kill it; prefer :func:`running_server`.
    """
    argv = bearer_grpc_command("serve", *(["--listen", listen] if listen else []), *args)
    server = ServeProcess(argv, cwd=cwd, env=env, umask=umask)
    if wait:
        try:
            server.wait_listening()
        except BaseException:
            server.kill()
            raise
    return server


@contextmanager
def running_server(cwd: Path, *args: str, **kwargs: Any) -> Iterator[ServeProcess]:
    """A listening ``bearer-grpc serve`` child (see :func:`start_server`), killed on exit
    if still running; a test stops it itself to check how it exits."""
    server = start_server(cwd, *args, **kwargs)
    try:
        yield server
    finally:
        server.kill()
