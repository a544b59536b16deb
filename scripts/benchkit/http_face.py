"""Section "http": the HTTP face against gRPC, a real peer and its own library, interleaved.

One ``bearer-grpc serve --http-listen`` on SQLite serves both faces; next to it run
node ``oidc-provider`` (a real OAuth 2.0 server issuing ES256 JWT access tokens for the
client-credentials grant, in memory) and a bare aiohttp endpoint serving the same JWKS
bytes. In ABBA rounds, N requests in flight each:

- ``grpc_issue``: IssueToken, client credentials (gRPC);
- ``http_token``: ``POST /token``, client credentials with Basic authentication;
- ``oidc_provider``: the same request to oidc-provider;
- ``jwks``: ``GET /jwks`` of the HTTP face; ``bare_jwks``: the bare endpoint.

Ratios per round, then medianed: http_token / grpc_issue (target >= 0.9), http_token /
oidc_provider (target >= 0.5, parity the goal) and jwks / bare_jwks (target >= 0.8).
The oidc-provider rows are skipped, saying why, without ``node`` or the npm packages.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchkit import procs, tokenservice
from benchkit.http_load import HttpLoad, measure_http
from benchkit.load import Load, Window, checked, measure
from benchkit.stats import median, ratios, round_order

ISSUE = f"{tokenservice.SERVICE_PATH}/IssueToken"
REPO = Path(__file__).resolve().parents[2]
OIDC_PROVIDER = Path(__file__).with_name("oidc_provider.mjs")
LABELS = {
    "grpc_issue": "IssueToken, client credentials (gRPC)",
    "http_token": "POST /token, client credentials (HTTP face)",
    "oidc_provider": "POST /token, client credentials (node oidc-provider, JWT)",
    "jwks": "GET /jwks (HTTP face)",
    "bare_jwks": "GET /jwks (bare aiohttp endpoint, same bytes)",
}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
WARM_UP_SECONDS = 1.0
"""Untimed load on each HTTP server before the rounds (a cold Node process answers its
first requests slowly enough to leave a short window empty)."""


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _basic(client_id: str, secret: str) -> dict[str, str]:
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {**FORM, "Authorization": f"Basic {pair}"}


@contextlib.contextmanager
def _oidc_provider(secret: str) -> Iterator[tuple[str, int] | str]:
    """oidc-provider on a free port: ``(url, pid)``, or why it cannot run."""
    node = shutil.which("node")
    if node is None:
        yield "node is not installed"
        return
    if not (REPO / "node_modules" / "oidc-provider").is_dir():
        yield "node_modules lacks oidc-provider: run npm ci"
        return
    port = _free_port()
    proc = subprocess.Popen(
        [node, str(OIDC_PROVIDER), str(port), "bench"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(secret + "\n")
        proc.stdin.flush()
        if proc.stdout.readline().strip() != "READY":
            yield "oidc-provider did not start"
            return
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _bare_jwks(url: str) -> Iterator[tuple[str, int]]:
    """The bare endpoint serving what ``url`` serves: ``(its URL, its pid)``."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
        given = {
            "body": response.read().decode(),
            "etag": response.headers["ETag"],
            "cache_control": response.headers["Cache-Control"],
        }
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchkit.bare_jwks"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=procs._env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(given) + "\n")
        proc.stdin.flush()
        port = int(proc.stdout.readline().split()[1])
        yield f"http://127.0.0.1:{port}/jwks", proc.pid
    finally:
        proc.stdin.close()
        proc.wait(10)


async def run(settings: dict[str, Any], progress: bool) -> dict[str, Any]:
    """Measure the HTTP face; return the "http" section."""
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(tokenservice.sqlite_store())
        client = tokenservice.add_client(store)
        port = _free_port()
        issuer = f"http://127.0.0.1:{port}"
        extra = ("--http-listen", f"127.0.0.1:{port}", "--issuer", issuer)
        [server] = stack.enter_context(tokenservice.serving(store, 1, *extra))
        pid = server.proc.pid
        loads: dict[str, Load | HttpLoad] = {
            "grpc_issue": Load(
                server.target,
                ISSUE,
                client.issue_request().SerializeToString(),
                lambda _index: None,
                pid,
            ),
            "http_token": HttpLoad(
                f"{issuer}/token",
                pid,
                "POST",
                b"grant_type=client_credentials",
                _basic(client.client_id, client.client_secret),
            ),
            "jwks": HttpLoad(f"{issuer}/jwks", pid),
        }
        bare_url, bare_pid = stack.enter_context(_bare_jwks(f"{issuer}/jwks"))
        loads["bare_jwks"] = HttpLoad(bare_url, bare_pid)
        peer_secret = secrets.token_urlsafe(32)
        peer = stack.enter_context(_oidc_provider(peer_secret))
        skipped = peer if isinstance(peer, str) else None
        if not isinstance(peer, str):
            loads["oidc_provider"] = HttpLoad(
                f"{peer[0]}/token",
                peer[1],
                "POST",
                b"grant_type=client_credentials&scope=a",
                _basic("bench", peer_secret),
            )
        order = [name for name in LABELS if name in loads]
        results: dict[str, list[Window]] = {name: [] for name in order}
        concurrency, warmup, seconds = (settings[k] for k in ("concurrency", "warmup", "seconds"))
        for load in loads.values():  # open the connections, warm Node's JIT; not measured
            if isinstance(load, HttpLoad):
                await measure_http(load, concurrency, 0.0, WARM_UP_SECONDS)
        for index in range(settings["rounds"]):
            for name in round_order(order, index):
                load = loads[name]
                if isinstance(load, HttpLoad):
                    window = await measure_http(load, concurrency, warmup, seconds)
                else:
                    window = await measure(load, concurrency, warmup, seconds)
                results[name].append(checked(name, window))
                if progress:
                    print(
                        f"  http round {index + 1}/{settings['rounds']} {name:<14} "
                        f"{window.calls_per_s:8,.0f} req/s",
                        file=sys.stderr,
                        flush=True,
                    )
    return summarize(results, skipped)


def summarize(results: dict[str, list[Window]], skipped: str | None) -> dict[str, Any]:
    """Medians per load, and the three ratios per round, medianed."""
    section: dict[str, Any] = {"oidc_provider_skipped": skipped}
    rates = {name: [w.calls_per_s for w in windows] for name, windows in results.items()}
    for name, windows in results.items():
        section[name] = {
            "label": LABELS[name],
            "calls_per_s": median(rates[name]),
            "p50_ms": median(w.p50_ms for w in windows),
            "p99_ms": median(w.p99_ms for w in windows),
            "server_cpu_us": median(
                w.server_cpu_us for w in windows if w.server_cpu_us is not None
            ),
            "rounds": [asdict(w) for w in windows],
        }
    pairs = {
        "http_over_grpc": ("http_token", "grpc_issue"),
        "http_over_oidc_provider": ("http_token", "oidc_provider"),
        "jwks_over_bare": ("jwks", "bare_jwks"),
    }
    for key, (a, b) in pairs.items():
        if a in rates and b in rates:
            per_round = ratios(rates[a], rates[b])
            section[key] = {"median": median(per_round), "rounds": per_round}
    return section
