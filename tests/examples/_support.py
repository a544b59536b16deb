"""Running the examples for real, with the commands of examples/README.md: processes
(``tests.harness.ServeProcess``) whose output lines are awaited with deadlines."""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness import EXAMPLES, ServeProcess, bearer_grpc_command

EXAMPLES_README = EXAMPLES / "README.md"
RUN_TIMEOUT = 30.0

# The addresses examples/README.md uses; tests substitute the real ones.
README_TOKENS = "127.0.0.1:50051"
README_SHOP = "127.0.0.1:50061"


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
    process: ServeProcess


def run(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None
) -> tuple[int, ServeProcess]:
    """Run a command to its end; its exit status and its output."""
    process = ServeProcess(argv, cwd=cwd, env=env)
    return process.wait(RUN_TIMEOUT), process


# -- bearer-grpc serve ---------------------------------------------------------------------------


def start_token_service(cwd: Path) -> tuple[ServeProcess, str]:
    """The README's ``bearer-grpc serve`` on 127.0.0.1 port 0, data in ``cwd``; and its
    target, from the ``listening`` JSON log line on stderr."""
    documented = readme_command("bearer-grpc", "serve")
    assert documented == ["bearer-grpc", "serve", "--listen", README_TOKENS], documented
    process = ServeProcess(bearer_grpc_command("serve", "--listen", "127.0.0.1:0"), cwd=cwd)
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
