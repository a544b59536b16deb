"""Running the examples for real: subprocesses whose output lines are awaited with deadlines,
the commands of examples/README.md, and the example modules loaded in-process.

Reader threads collect each process's stdout and stderr line by line and wake waiters on
every line and at end of file, so waiting for ``listening on …`` takes exactly as long as
the process needs, and a process that dies early fails the wait at once with its output.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from tests.cli._support import clean_env, command

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
EXAMPLES_README = EXAMPLES / "README.md"
START_TIMEOUT = 20.0
RUN_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

# The addresses examples/README.md uses; tests substitute the real ones.
README_TOKENS = "127.0.0.1:50051"
README_SHOP = "127.0.0.1:50061"


class Process:
    """A subprocess with its output collected line by line (see the module docstring)."""

    def __init__(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
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

    def output(self) -> str:
        """Both streams so far, for assertion messages."""
        with self._cond:
            return (
                f"{shlex.join(self.argv)}\n--- stdout\n"
                + "\n".join(self._lines["stdout"])
                + "\n--- stderr\n"
                + "\n".join(self._lines["stderr"])
            )

    def wait_for_line(
        self, pattern: str, *, stream: str = "stdout", timeout: float = START_TIMEOUT
    ) -> re.Match[str]:
        """The first line of ``stream`` matching ``pattern``, waiting for it up to ``timeout``.

        Raises:
            AssertionError: The streams ended (the process exited) or the deadline passed
                without such a line; the message holds the output.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines[stream]:
                    match = regex.search(line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if self._open == 0 or remaining <= 0:
                    break
                self._cond.wait(remaining)
        why = "ended" if self._open == 0 else f"still running after {timeout} s"
        raise AssertionError(f"no line matching {pattern!r}; process {why}:\n{self.output()}")

    def wait(self, timeout: float = RUN_TIMEOUT) -> int:
        """Wait for the exit and for the output to be read; returns the exit status."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired as err:
            self.kill()
            raise AssertionError(f"still running after {timeout} s:\n{self.output()}") from err
        for reader in self._readers:
            reader.join(timeout)
        return status

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then wait for the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL if still running, and reap."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(STOP_TIMEOUT)
        for reader in self._readers:
            reader.join(STOP_TIMEOUT)


@dataclass(frozen=True)
class TokenService:
    """A running ``bearer-grpc serve`` and the README's clients, registered in it."""

    target: str
    secrets: dict[str, str]


@dataclass(frozen=True)
class ExampleServer:
    """A running example server (``server.py`` or ``server_aio.py``)."""

    script: str
    target: str
    process: Process


def run(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None
) -> tuple[int, Process]:
    """Run a command to its end; its exit status and its output."""
    process = Process(argv, cwd=cwd, env=env)
    return process.wait(), process


# -- bearer-grpc serve ---------------------------------------------------------------------------


def start_token_service(cwd: Path) -> tuple[Process, str]:
    """The README's ``bearer-grpc serve`` on 127.0.0.1 port 0, data in ``cwd``; and its
    target, from the ``listening`` JSON log line on stderr."""
    documented = readme_command("bearer-grpc", "serve")
    assert documented == ["bearer-grpc", "serve", "--listen", README_TOKENS], documented
    process = Process(command("serve", "--listen", "127.0.0.1:0"), cwd=cwd)
    try:
        match = process.wait_for_line(r'"message":\s*"listening"', stream="stderr")
    except BaseException:
        process.kill()
        raise
    record: dict[str, Any] = json.loads(match.string)
    return process, f"127.0.0.1:{record['port']}"


# -- examples/README.md --------------------------------------------------------------------------


def readme_commands() -> list[list[str]]:
    """Every command line of the ``sh`` blocks of examples/README.md, split into words
    (comments left out)."""
    text = EXAMPLES_README.read_text()
    blocks = re.findall(r"^ *```sh\n(.*?)^ *```$", text, re.M | re.S)
    lines = [shlex.split(line, comments=True) for block in blocks for line in block.splitlines()]
    return [words for words in lines if words]


def _flag(words: list[str], flag: str) -> str | None:
    return words[words.index(flag) + 1] if flag in words[:-1] else None


def readme_command(*prefix: str, client_id: str | None = None) -> list[str]:
    """The one README command that starts with the words ``prefix`` (and, if given, has
    ``--client-id CLIENT_ID``)."""
    matches = [
        words
        for words in readme_commands()
        if words[: len(prefix)] == list(prefix)
        and (client_id is None or _flag(words, "--client-id") == client_id)
    ]
    assert len(matches) == 1, f"examples/README.md: {len(matches)} commands {prefix} {client_id}"
    return matches[0]


def example_argv(
    script: str, *, tokens: str, listen: str = "", target: str = "", client_id: str | None = None
) -> list[str]:
    """The README's command for ``examples/SCRIPT`` with the real addresses, run by this
    interpreter: ``--tokens`` becomes ``tokens``, ``--listen`` ``listen``, ``--target``
    ``target``. Every other word stays as the README has it. For a client, ``client_id``
    picks the README command with that ``--client-id``.

    The aio twins (``server_aio.py``, ``client_aio.py``) take the README command of the
    sync script: examples/README.md says they take the same flags.
    """
    documented = readme_command(
        "python", f"examples/{script.replace('_aio', '')}", client_id=client_id
    )
    values = {"--tokens": tokens, "--listen": listen, "--target": target}
    argv = [sys.executable, str(EXAMPLES / script)]
    words = iter(documented[2:])
    for word in words:
        argv.append(word)
        if word in values:
            readme_value = next(words)
            assert readme_value in (README_TOKENS, README_SHOP), (script, word, readme_value)
            assert values[word], f"{script}: no address for {word}"
            argv.append(values[word])
    return argv


def clients_add_args(name: str) -> list[str]:
    """The README's ``bearer-grpc clients add NAME …`` arguments (after ``bearer-grpc``),
    plus ``--json`` for the test to read the secret that a person copies from the output."""
    return [*readme_command("bearer-grpc", "clients", "add", name)[1:], "--json"]


# -- the example modules, in-process -------------------------------------------------------------


def load_example(name: str) -> ModuleType:
    """Import ``examples/NAME.py`` as module ``examples_NAME`` (examples/ joins sys.path,
    at the end, for the generated ``shop.v1`` package the examples import)."""
    module_name = f"examples_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    if str(EXAMPLES) not in sys.path:
        sys.path.append(str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
