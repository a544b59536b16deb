"""Server subprocesses: echo servers (:mod:`.echo_server`) and ``bearer-grpc serve``.

Each server runs in a process of its own so that the load generator and the server do
not share a GIL (on 2 cores: roughly one core each), and stops when its stdin is closed.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

KIT_PARENT = str(Path(__file__).resolve().parent.parent)
START_TIMEOUT = 60.0


@dataclass
class Server:
    """A server subprocess and the address it listens on."""

    name: str
    proc: subprocess.Popen[bytes]
    target: str = ""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = KIT_PARENT + (os.pathsep + path if path else "")
    return env


def start_echo_servers(
    configs: Sequence[dict[str, Any]], module: str = "benchkit.echo_server"
) -> list[Server]:
    """Start one ``module`` process per config (together); wait until all listen.

    ``module`` reads its JSON config on stdin and prints ``TARGET host:port`` per server:
    :mod:`.echo_server` (the default) or :mod:`.authz_echo`.

    Returns:
        One :class:`Server` per variant of each config, named ``"{name}/{variant}"``
        (the variants of one config share a process).
    """
    servers = []
    for config in configs:
        proc = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # unbuffered: several TARGET lines, each read after its own select
            env=_env(),
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(config).encode() + b"\n")
        proc.stdin.flush()
        variants = config.get("variants", ["check"])
        servers += [Server(f"{config.get('name', module)}/{v}", proc) for v in variants]
    deadline = time.monotonic() + START_TIMEOUT
    for server in servers:
        line = _readline(server.proc.stdout, deadline)
        if not line.startswith("TARGET "):
            stop(servers)
            raise SystemExit(f"echo server {server.name} did not start")
        server.target = line.split()[1]
    return servers


def _readline(stream: IO[bytes] | None, deadline: float) -> str:
    assert stream is not None
    ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
    return stream.readline().decode() if ready else ""


def start_token_service(name: str, store_args: Sequence[str], *extra: str) -> Server:
    """Run ``bearer-grpc serve`` on a free loopback port; wait for its "listening" line.

    Args:
        name: A label for messages.
        store_args: ``--data-dir DIR`` or ``--store URL`` (plus e.g. the key-encryption key).
        extra: More ``serve`` flags.
    """
    return start_command(name, "serve", "--grace", "1", *store_args, *extra)


def start_command(name: str, command: str, *args: str) -> Server:
    """Run ``bearer-grpc COMMAND --listen 127.0.0.1:0 ARGS`` (``serve``, ``authz``); wait for
    its "listening" line, then drain its log."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bearer_grpc",
            command,
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "info",
            *args,
        ],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # unbuffered: select sees every line
    )
    deadline = time.monotonic() + START_TIMEOUT
    lines: list[str] = []
    while True:
        line = _readline(proc.stderr, deadline)
        if not line:
            proc.kill()
            proc.wait()
            raise SystemExit(
                f"{name}: bearer-grpc {command} did not start: {''.join(lines)[-2000:]}"
            )
        lines.append(line)
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("message") == "listening":
                break
    threading.Thread(target=_drain, args=(proc.stderr,), daemon=True).start()
    return Server(name, proc, f"127.0.0.1:{record['port']}")


def _drain(stream: IO[bytes] | None) -> None:
    assert stream is not None
    for _ in stream:
        pass


def stop(servers: Sequence[Server]) -> None:
    """Close each server's stdin and terminate ``bearer-grpc`` servers; wait; kill stragglers."""
    for server in servers:
        if server.proc.stdin is not None:
            with contextlib.suppress(OSError):
                server.proc.stdin.close()
        if server.proc.stdout is None:  # bearer-grpc serve or authz: stops on SIGTERM
            server.proc.terminate()
    for server in servers:
        try:
            server.proc.wait(15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@contextlib.contextmanager
def running(servers: list[Server]) -> Iterator[list[Server]]:
    """Stop ``servers`` when the block ends."""
    try:
        yield servers
    finally:
        stop(servers)


def bearer_grpc_cli(*args: str) -> str:
    """Run ``bearer-grpc ARGS`` and return its stdout (raises SystemExit on failure)."""
    done = subprocess.run(
        [sys.executable, "-m", "bearer_grpc", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"bearer-grpc {args[0]} {args[1]} failed: {done.stderr.strip()}")
    return done.stdout


def proc_cpu(pid: int, *, main_thread: bool = False) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid``, or by its main thread
    only (for a TokenService: the event loop's thread)."""
    stat = f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat"
    try:
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float | None:
    """CPU seconds every process of the machine used so far (from /proc/stat)."""
    try:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    # idle, iowait and steal are not work of this machine's processes
    not_busy = values[3] + values[4] + (values[7] if len(values) > 7 else 0)
    guest = sum(values[8:10])  # already counted in user/nice
    return (sum(values) - not_busy - guest) / os.sysconf("SC_CLK_TCK")
