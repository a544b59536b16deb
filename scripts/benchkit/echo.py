"""Section "echo": end-to-end unary echo, bare vs protected, sync and aio servers.

Every variant is a server of its own, on its own port, in one subprocess per flavour (so the
load generator and the server each get about one of the 2 cores, and do not share a GIL;
the idle servers cost nothing). The load generator (this process, an aio client with N
calls in flight on one channel) visits them in ABBA order, one window each per round.
Every variant gets an ``authorization`` header, so only the server's work differs. Variants:

- ``bare``: no interceptor;
- ``naive``: the hand-written PyJWT interceptor (:mod:`.naive`), a decode every call;
- ``bearer``: ``bearer_grpc.BearerServerInterceptor`` (``bearer_grpc.aio`` for aio), one
  token reused (after the first call, cache hits);
- ``bearer_fresh``: the same, with a new pre-issued token every ``fresh_every`` calls.

Ratios are computed per round (each variant over bare, and bearer over naive, same flavour,
same round), then medianed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import grpc
import grpc.aio

from bearer_grpc.testing import TestIssuer
from benchkit import procs
from benchkit.echo_server import METHOD
from benchkit.load import Load, Metadata, Window, checked, measure
from benchkit.stats import median, ratios, round_order

AUDIENCE = "bench"
PAYLOAD = b"0123456789abcdef"
FLAVOURS = ("sync", "aio")
VARIANTS = ("bare", "naive", "bearer", "bearer_fresh")
LABELS = {
    "bare": "bare (no interceptor)",
    "naive": "naive PyJWT interceptor",
    "bearer": "bearer_grpc, token reused",
    "bearer_fresh": "bearer_grpc, fresh token every {n}",
}
MAX_RATE = 8000.0  # calls/s the fresh-token pool is sized for


def _header(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _metadata(variant: str, token: str, pool: list[str], every: int) -> Callable[[int], Metadata]:
    if variant != "bearer_fresh":
        fixed = _header(token)
        return lambda _index: fixed
    headers = [_header(t) for t in pool]
    state = {"next": 0}

    def fresh(_index: int) -> Metadata:
        # a global counter across windows: a token is never seen again in a later round
        position = state["next"]
        state["next"] = position + 1
        return headers[(position // every) % len(headers)]

    return fresh


async def _check(server: procs.Server, variant: str, token: str) -> None:
    """Refuse a call without a token (protected variants); accept the good token."""
    async with grpc.aio.insecure_channel(server.target) as channel:
        echo: Any = channel.unary_unary(METHOD)
        if await echo(PAYLOAD, metadata=_header(token), timeout=10) != PAYLOAD:
            raise SystemExit(f"{server.name}: echo returned something else")
        if variant == "bare":
            return
        try:
            await echo(PAYLOAD, timeout=10)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                return
            raise SystemExit(f"{server.name}: no token gave {err.code().name}") from err
        raise SystemExit(f"{server.name}: a call without a token was accepted")


async def run(settings: dict[str, Any], progress: bool) -> dict[str, Any]:
    """Measure every flavour x variant; return the "echo" section of the report."""
    rounds, seconds, warmup = settings["rounds"], settings["seconds"], settings["warmup"]
    concurrency, every = settings["concurrency"], settings["fresh_every"]
    issuer = TestIssuer()
    token = issuer.token(subject="bench-client", audience=AUDIENCE, lifetime=86_400)
    pool_size = math.ceil(MAX_RATE * (warmup + seconds) * rounds / every) + concurrency
    pools = {
        flavour: [
            issuer.token(subject=f"bench-{flavour}-{i}", audience=AUDIENCE, lifetime=86_400)
            for i in range(pool_size)
        ]
        for flavour in FLAVOURS
    }
    configs: list[dict[str, Any]] = [
        {
            "name": flavour,
            "flavour": flavour,
            # bearer_fresh gets a server of its own: its cache must not know the tokens
            "variants": ["bearer" if v == "bearer_fresh" else v for v in VARIANTS],
            "jwks": issuer.jwks,
            "issuer": issuer.issuer,
            "audience": AUDIENCE,
        }
        for flavour in FLAVOURS
    ]
    results: dict[str, dict[str, list[Window]]] = {f: {v: [] for v in VARIANTS} for f in FLAVOURS}
    with procs.running(procs.start_echo_servers(configs)) as servers:
        loads = []
        cells = [(flavour, variant) for flavour in FLAVOURS for variant in VARIANTS]
        for server, (flavour, variant) in zip(servers, cells, strict=True):
            await _check(server, variant, token)
            metadata = _metadata(variant, token, pools[flavour], every)
            load = Load(server.target, METHOD, PAYLOAD, metadata, server.proc.pid)
            loads.append((flavour, variant, load))
        for index in range(rounds):
            for flavour, variant, load in round_order(loads, index):
                window = checked(
                    f"{flavour}/{variant}", await measure(load, concurrency, warmup, seconds)
                )
                results[flavour][variant].append(window)
                if progress:
                    print(
                        f"  echo round {index + 1}/{rounds} {flavour:>4} {variant:<12} "
                        f"{window.calls_per_s:8,.0f} calls/s",
                        file=sys.stderr,
                        flush=True,
                    )
    return summarize(results, settings)


def summarize(
    results: dict[str, dict[str, list[Window]]], settings: dict[str, Any]
) -> dict[str, Any]:
    """Medians and per-round ratios of every flavour x variant."""
    section: dict[str, Any] = {
        "settings": {
            key: settings[key]
            for key in ("rounds", "seconds", "warmup", "concurrency", "fresh_every")
        },
        "sync_workers": 8,
        "client": "grpc.aio, one channel, in the bench process; servers in subprocesses",
    }
    for flavour, variants in results.items():
        bare = [w.calls_per_s for w in variants["bare"]]
        naive = [w.calls_per_s for w in variants["naive"]]
        section[flavour] = {}
        for variant, windows in variants.items():
            rates = [w.calls_per_s for w in windows]
            entry: dict[str, Any] = {
                "label": LABELS[variant].format(n=settings["fresh_every"]),
                "calls_per_s": median(rates),
                "p50_ms": median(w.p50_ms for w in windows),
                "p99_ms": median(w.p99_ms for w in windows),
                "server_cpu_us": median(
                    w.server_cpu_us for w in windows if w.server_cpu_us is not None
                ),
                "client_cpu_us": median(w.client_cpu_us for w in windows),
                "ratio_to_bare": median(ratios(rates, bare)),
                "ratios_to_bare": ratios(rates, bare),
                "foreign_cores_max": max(
                    (w.foreign_cores for w in windows if w.foreign_cores is not None), default=0.0
                ),
                "rounds": [asdict(w) for w in windows],
            }
            if variant.startswith("bearer"):
                entry["ratio_to_naive"] = median(ratios(rates, naive))
                entry["ratios_to_naive"] = ratios(rates, naive)
            section[flavour][variant] = entry
    return section
