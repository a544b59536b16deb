"""Section "cli": how long the ``bearer-grpc`` command takes, as a whole process.

Each figure is one process from start to exit, timed by the parent around
``subprocess.run`` (output discarded): the console script next to this Python
(``.venv/bin/bearer-grpc``), as an operator's shell runs it. The commands:

- ``python -c pass``: the floor, an interpreter that starts and exits (``site`` included);
- ``bearer-grpc --version`` and ``bearer-grpc --help``: the parser alone;
- ``bearer-grpc token verify``: a real VerifyToken call to ``bearer-grpc serve`` on SQLite
  (started here, with a client registered and a token issued through the CLI).

The commands run interleaved (A B C D, then D C B A, ...), ``runs`` times each; the table
quotes the minimum and the median.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchkit import tokenservice
from benchkit.stats import median, round_order

LABELS = {
    "floor": "python -c pass (the floor)",
    "version": "bearer-grpc --version",
    "help": "bearer-grpc --help",
    "verify": "bearer-grpc token verify (VerifyToken on a running serve)",
}
TARGETS_MS = {"version": 150.0, "help": 150.0, "verify": 400.0}
"""Medians the command should stay under (marked in the table, not enforced)."""


def console_script() -> Path:
    """The ``bearer-grpc`` console script installed next to this interpreter."""
    path = Path(sys.executable).parent / "bearer-grpc"
    if not os.access(path, os.X_OK):
        raise SystemExit(f"cli: no console script at {path}: install the project (scripts/test)")
    return path


def _time_ms(argv: Sequence[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        timeout=60,
        check=False,
    )
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise SystemExit(f"cli: {' '.join(argv)} exited {done.returncode}: {done.stderr[-500:]!r}")
    return elapsed


def run(settings: dict[str, Any]) -> dict[str, Any]:
    """Time the commands; return the "cli" section."""
    script = str(console_script())
    runs = int(settings["cli_runs"])
    env = dict(os.environ)
    with tokenservice.sqlite_store() as store:
        client = tokenservice.add_client(store)
        with tokenservice.serving(store) as [server]:
            [token] = tokenservice.issue_tokens(server.target, client, 1)
            verify_env = {**env, "BEARER_GRPC_TOKEN": token}
            commands: dict[str, tuple[list[str], dict[str, str]]] = {
                "floor": ([sys.executable, "-c", "pass"], env),
                "version": ([script, "--version"], env),
                "help": ([script, "--help"], env),
                "verify": (
                    [
                        script,
                        "token",
                        "verify",
                        "--target",
                        server.target,
                        "--audience",
                        tokenservice.AUDIENCE,
                    ],
                    verify_env,
                ),
            }
            for argv, command_env in commands.values():  # warm the page cache once
                _time_ms(argv, command_env)
            samples: dict[str, list[float]] = {name: [] for name in commands}
            for index in range(runs):
                for name in round_order(list(commands), index):
                    argv, command_env = commands[name]
                    samples[name].append(_time_ms(argv, command_env))
    return {
        "runs": runs,
        "script": script,
        "loadavg": os.getloadavg()[0],
        **{
            name: {
                "label": LABELS[name],
                "min_ms": min(values),
                "median_ms": median(values),
                "samples_ms": values,
            }
            for name, values in samples.items()
        },
    }
