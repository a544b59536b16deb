"""Per-call cost of bearer_grpc's server interceptor, measured side by side in one run.

Two parts, each interleaved (A B C D, then D C B A, ...) so that machine noise hits every
variant alike; every figure is a median over rounds.

1. In process, no network: ``intercept_service`` of the sync interceptor plus a call of
   the handler it returns, with grpc-like call details and a dummy context. Variants:
   the bare handler, bearer_grpc with a cache hit (the same token every call), bearer_grpc
   with its cache disabled (``cache_size=0``: an ES256 verification every call), and a
   hand-written interceptor running ``jwt.decode(...)`` on every call.
2. End to end, unary echo over loopback: an aio client with N calls in flight on one
   channel, against a server in a subprocess (sync ``grpc.server`` with 8 worker threads,
   and ``grpc.aio.server``), for the same variants. Every variant gets the same
   ``authorization`` header, so only the server's work differs. Reported: calls/s, p50/p99
   latency, CPU per call of server and client, the CPU other processes used during the
   window ("foreign cores"), and each variant's ratio to bare in the same round (median of
   the per-round ratios).

Before timing, every server is checked: a call without a token (or with a tampered one)
must be refused by every interceptor, and a good token accepted.

    scripts/bench-interceptor                 # a few minutes: 3 rounds of 4 s windows
    scripts/bench-interceptor --quick         # a few seconds (smoke test)
    scripts/bench-interceptor --json out.json
    scripts/bench-interceptor --servers aio --variants bearer_hit --rounds 6   # one A/B only
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import math
import os
import platform
import pstats
import resource
import select
import statistics
import subprocess
import sys
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cryptography
import grpc
import grpc.aio
import jwt

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc.testing import TestIssuer, serve, serve_aio

AUDIENCE = "bench"
SERVICE = "bench.Echo"
METHOD = f"/{SERVICE}/Echo"
PAYLOAD = b"0123456789abcdef"
SYNC_WORKERS = 8

VARIANTS = ("bare", "naive", "bearer_hit", "bearer_miss")
OPTIONAL_VARIANTS = ("passthrough",)  # end to end only, with --variants
LABELS = {
    "bare": "bare (no interceptor)",
    "naive": "naive: PyJWT jwt.decode every call",
    "bearer_hit": "bearer_grpc, cache hit",
    "bearer_miss": "bearer_grpc, cache_size=0",
    "passthrough": "control: pass-through interceptor",
}
FLAVOURS = ("sync", "aio")
FLAVOUR_LABELS = {"sync": f"sync{SYNC_WORKERS}", "aio": "aio"}


# --------------------------------------------------------------------------------------
# The naive interceptor: what people write today.


def naive_accepts(metadata: Sequence[tuple[str, Any]] | None, key: Any, issuer: str) -> bool:
    """Whether the call carries ``Bearer <token>`` that PyJWT accepts (decoded each call)."""
    for name, value in metadata or ():
        if name == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            try:
                jwt.decode(value[7:], key, algorithms=["ES256"], audience=AUDIENCE, issuer=issuer)
            except jwt.PyJWTError:
                return False
            return True
    return False


def _deny_sync(request: Any, context: grpc.ServicerContext) -> Any:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")


async def _deny_aio(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")


class NaiveInterceptor(grpc.ServerInterceptor):
    """``jwt.decode`` in ``intercept_service`` on every call (sync server)."""

    def __init__(self, key: Any, issuer: str) -> None:
        self._key = key
        self._issuer = issuer
        self._deny = grpc.unary_unary_rpc_method_handler(_deny_sync)

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        if naive_accepts(handler_call_details.invocation_metadata, self._key, self._issuer):
            return continuation(handler_call_details)
        return self._deny


class NaiveAioInterceptor(grpc.aio.ServerInterceptor):
    """``jwt.decode`` in ``intercept_service`` on every call (aio server)."""

    def __init__(self, key: Any, issuer: str) -> None:
        self._key = key
        self._issuer = issuer
        self._deny = grpc.unary_unary_rpc_method_handler(_deny_aio)

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        if naive_accepts(handler_call_details.invocation_metadata, self._key, self._issuer):
            return await continuation(handler_call_details)
        return self._deny


class PassThrough(grpc.ServerInterceptor):
    """Control: the cost of having an interceptor at all (sync server)."""

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        return continuation(handler_call_details)


class PassThroughAio(grpc.aio.ServerInterceptor):
    """Control: the cost of having an interceptor at all (aio server)."""

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        return await continuation(handler_call_details)


# --------------------------------------------------------------------------------------
# Servers (run in a subprocess: ``bench_interceptor.py --serve`` reads its config on stdin).


def _echo(request: bytes, context: Any) -> bytes:
    return request


async def _echo_aio(request: bytes, context: Any) -> bytes:
    return request


def _interceptors(flavour: str, variant: str, jwks: dict[str, Any], issuer: str) -> list[Any]:
    if variant == "bare":
        return []
    if variant == "passthrough":
        return [PassThrough() if flavour == "sync" else PassThroughAio()]
    if variant == "naive":
        key = jwt.PyJWK(jwks["keys"][0]).key
        return [
            NaiveInterceptor(key, issuer) if flavour == "sync" else NaiveAioInterceptor(key, issuer)
        ]
    options: dict[str, Any] = {"issuer": issuer, "audience": AUDIENCE}
    if variant == "bearer_miss":
        options["cache_size"] = 0
    if flavour == "sync":
        verifier = bearer_grpc.Verifier.from_jwks(jwks, **options)
        return [bearer_grpc.BearerServerInterceptor(verifier)]
    aio_verifier = bearer_grpc.aio.Verifier.from_jwks(jwks, **options)
    return [bearer_grpc.aio.BearerServerInterceptor(aio_verifier)]


def _stdin_closed(callback: Callable[[], None]) -> None:
    """Call ``callback`` (in a daemon thread) once the parent closes our stdin."""

    def wait() -> None:
        sys.stdin.buffer.read()
        callback()

    threading.Thread(target=wait, daemon=True).start()


def _announce(target: str) -> None:
    print(f"TARGET {target}", flush=True)


def run_server(config: dict[str, Any]) -> None:
    """Serve the echo until stdin is closed (or ``config["lifetime"]`` seconds pass)."""
    flavour, variant, lifetime = config["flavour"], config["variant"], config["lifetime"]
    interceptors = _interceptors(flavour, variant, config["jwks"], config["issuer"])
    if flavour == "sync":
        handler = grpc.method_handlers_generic_handler(
            SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
        )
        done = threading.Event()
        _stdin_closed(done.set)
        with serve([handler], interceptors=interceptors, max_workers=SYNC_WORKERS) as target:
            _announce(target)
            done.wait(lifetime)
        return

    async def main() -> None:
        handler = grpc.method_handlers_generic_handler(
            SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo_aio)}
        )
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        _stdin_closed(lambda: loop.call_soon_threadsafe(done.set))
        async with serve_aio([handler], interceptors=interceptors) as target:
            _announce(target)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), lifetime)

    asyncio.run(main())


@dataclass
class Server:
    """A server subprocess and its address."""

    flavour: str
    variant: str
    proc: subprocess.Popen[bytes]
    target: str = ""


def start_servers(
    jwks: dict[str, Any],
    issuer: str,
    flavours: Sequence[str],
    variants: Sequence[str],
    lifetime: float,
) -> list[Server]:
    """Start one server subprocess per (flavour, variant); wait until all listen.

    Each stops when its stdin is closed, or by itself after ``lifetime`` seconds.
    """
    servers = []
    for flavour in flavours:
        for variant in variants:
            proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert proc.stdin is not None
            config = {
                "flavour": flavour,
                "variant": variant,
                "jwks": jwks,
                "issuer": issuer,
                "lifetime": lifetime,
            }
            proc.stdin.write(json.dumps(config).encode() + b"\n")
            proc.stdin.flush()
            servers.append(Server(flavour, variant, proc))
    deadline = time.monotonic() + 60
    for server in servers:
        stdout = server.proc.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], max(0.0, deadline - time.monotonic()))
        line = stdout.readline().decode() if ready else ""
        if not line.startswith("TARGET "):
            stop_servers(servers)
            raise SystemExit(f"{server.flavour}/{server.variant} server did not start")
        server.target = line.split()[1]
    return servers


def stop_servers(servers: list[Server]) -> None:
    """Close each server's stdin (it stops by itself), then wait; kill stragglers."""
    for server in servers:
        if server.proc.stdin is not None:
            with contextlib.suppress(OSError):
                server.proc.stdin.close()
    for server in servers:
        try:
            server.proc.wait(15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


# --------------------------------------------------------------------------------------
# Part 1: in process.

HandlerCallDetails = namedtuple("HandlerCallDetails", ("method", "invocation_metadata"))


class Refused(Exception):
    """Raised by the dummy context when a call is aborted."""


class DummyContext:
    """The parts of ``grpc.ServicerContext`` the interceptors touch."""

    def set_code(self, code: Any) -> None:
        self.code = code

    def set_details(self, details: Any) -> None:
        self.details = details

    def abort(self, code: Any, details: str) -> Any:
        raise Refused(code)

    def abort_with_status(self, status: Any) -> Any:
        raise Refused(status.code)


def call_details(token: str | None) -> HandlerCallDetails:
    """Call details as grpc hands them to ``intercept_service``."""
    metadata: tuple[tuple[str, str], ...] = (
        ("user-agent", f"grpc-python-asyncio/{grpc.__version__} grpc-c/52.0.0 (linux; chttp2)"),
    )
    if token is not None:
        metadata += (("authorization", f"Bearer {token}"),)
    return HandlerCallDetails(METHOD, metadata)


def micro_calls(issuer: TestIssuer, token: str) -> dict[str, Callable[[], Any]]:
    """One call of each variant: intercept, then invoke the handler it returns."""
    handler = grpc.unary_unary_rpc_method_handler(_echo)

    def continuation(details: Any) -> Any:
        return handler

    key = jwt.PyJWK(issuer.jwks["keys"][0]).key
    interceptors: dict[str, Any] = {
        "naive": NaiveInterceptor(key, issuer.issuer),
        "bearer_hit": bearer_grpc.BearerServerInterceptor(issuer.verifier(audience=AUDIENCE)),
        "bearer_miss": bearer_grpc.BearerServerInterceptor(
            issuer.verifier(audience=AUDIENCE, cache_size=0)
        ),
    }
    details = call_details(token)
    context = DummyContext()

    def bare() -> Any:
        return continuation(details).unary_unary(PAYLOAD, context)

    def through(interceptor: Any) -> Callable[[], Any]:
        intercept = interceptor.intercept_service

        def call() -> Any:
            return intercept(continuation, details).unary_unary(PAYLOAD, context)

        return call

    calls = {"bare": bare}
    calls.update({name: through(interceptor) for name, interceptor in interceptors.items()})

    # Sanity: each interceptor refuses a call without a token and passes a good one.
    for name, interceptor in interceptors.items():
        try:
            interceptor.intercept_service(continuation, call_details(None)).unary_unary(
                PAYLOAD, context
            )
        except Refused:
            pass
        else:
            raise SystemExit(f"{name}: a call without a token was not refused")
    for name, call in calls.items():
        if call() != PAYLOAD:
            raise SystemExit(f"{name}: the echo did not come back")
    return calls


def time_calls(call: Callable[[], Any], seconds: float) -> float:
    """µs per call of ``call`` in a tight loop for ``seconds``."""
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            call()
        count += 20
        now = time.perf_counter()
        if now >= deadline:
            return (now - start) / count * 1e6


def run_micro(
    calls: dict[str, Callable[[], Any]], rounds: int, seconds: float
) -> dict[str, list[float]]:
    """Interleaved rounds of every variant; µs/call per round."""
    for call in calls.values():  # warm-up
        time_calls(call, min(seconds, 0.1))
    results: dict[str, list[float]] = {name: [] for name in calls}
    for index in range(rounds):
        order = list(calls) if index % 2 == 0 else list(reversed(calls))
        for name in order:
            results[name].append(time_calls(calls[name], seconds))
    return results


def profile_cache_hit(calls: dict[str, Callable[[], Any]], count: int = 200_000) -> None:
    """cProfile the cache-hit path (``--profile``) and print the top functions."""
    call = calls["bearer_hit"]
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        call()
    profiler.disable()
    print(f"\ncProfile of {count:,} cache-hit calls (intercept_service + handler), by tottime:")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(18)


# --------------------------------------------------------------------------------------
# Part 2: end to end.


def _proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine_busy() -> float | None:
    """CPU seconds all processes of the machine used so far (from /proc/stat)."""
    try:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal guest guest_nice: idle, iowait and
    # steal (another VM's time) are not our processes; guest is already in user/nice.
    not_busy = values[3] + sum(values[4:5]) + sum(values[7:10])
    return (sum(values) - not_busy) / os.sysconf("SC_CLK_TCK")


@dataclass
class Window:
    """One measurement window of one server."""

    calls_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float | None
    client_cpu_us: float
    foreign_cores: float | None
    calls: int
    errors: int = 0
    error_sample: list[str] = field(default_factory=list)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def check_server(server: Server, token: str) -> None:
    """Refusals and acceptance as each variant promises; raises SystemExit otherwise."""
    async with grpc.aio.insecure_channel(server.target) as channel:
        echo = channel.unary_unary(METHOD)
        tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        open_door = server.variant in ("bare", "passthrough")
        cases: list[tuple[str, Any, bool]] = [
            ("good token", (("authorization", f"Bearer {token}"),), True),
            ("no token", None, open_door),
            ("tampered token", (("authorization", f"Bearer {tampered}"),), open_door),
        ]
        for case, metadata, should_pass in cases:
            try:
                reply = await echo(PAYLOAD, metadata=metadata, timeout=10)
                passed = reply == PAYLOAD
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.UNAUTHENTICATED:
                    raise SystemExit(f"{server.flavour}/{server.variant}: {case}: {err}") from err
                passed = False
            if passed != should_pass:
                verdict = "accepted" if passed else "refused"
                raise SystemExit(f"{server.flavour}/{server.variant}: {case} was {verdict}")


async def measure(
    server: Server, token: str, concurrency: int, warmup: float, seconds: float
) -> Window:
    """Closed loop of ``concurrency`` calls in flight on a fresh channel."""
    metadata = (("authorization", f"Bearer {token}"),)
    latencies: list[float] = []
    errors: list[str] = []
    async with grpc.aio.insecure_channel(server.target) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
        echo = channel.unary_unary(METHOD)
        begin = time.perf_counter()
        start, end = begin + warmup, begin + warmup + seconds

        async def worker() -> None:
            clock = time.perf_counter
            while True:
                sent = clock()
                if sent >= end:
                    return
                try:
                    await echo(PAYLOAD, metadata=metadata, timeout=30)
                except grpc.aio.AioRpcError as err:
                    errors.append(f"{err.code().name}: {err.details()}")
                    continue
                done = clock()
                if start <= done < end:
                    latencies.append(done - sent)

        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.sleep(max(0.0, start - time.perf_counter()))  # the warm-up window
        cpu0 = (_proc_cpu(server.proc.pid), _own_cpu(), _machine_busy(), time.perf_counter())
        await asyncio.sleep(max(0.0, end - time.perf_counter()))  # the measurement window
        cpu1 = (_proc_cpu(server.proc.pid), _own_cpu(), _machine_busy(), time.perf_counter())
        await asyncio.gather(*tasks)

    wall = cpu1[3] - cpu0[3]
    count = len(latencies)
    server_cpu = cpu1[0] - cpu0[0] if cpu0[0] is not None and cpu1[0] is not None else None
    client_cpu = cpu1[1] - cpu0[1]
    foreign = None
    if server_cpu is not None and cpu0[2] is not None and cpu1[2] is not None:
        foreign = max(0.0, (cpu1[2] - cpu0[2] - server_cpu - client_cpu) / wall)
    latencies.sort()
    per_call = 1e6 / count if count else math.nan
    return Window(
        calls_per_s=count / seconds,
        p50_ms=percentile(latencies, 50) * 1e3,
        p99_ms=percentile(latencies, 99) * 1e3,
        server_cpu_us=server_cpu * per_call if server_cpu is not None else None,
        client_cpu_us=client_cpu * per_call,
        foreign_cores=foreign,
        calls=count,
        errors=len(errors),
        error_sample=errors[:3],
    )


async def run_e2e(
    servers: list[Server],
    token: str,
    *,
    rounds: int,
    concurrency: int,
    warmup: float,
    seconds: float,
    progress: bool,
) -> dict[str, dict[str, list[Window]]]:
    """Interleaved rounds over every server; one window each per round."""
    for server in servers:
        await check_server(server, token)
    results: dict[str, dict[str, list[Window]]] = {server.flavour: {} for server in servers}
    for server in servers:
        results[server.flavour][server.variant] = []
    for index in range(rounds):
        order = servers if index % 2 == 0 else list(reversed(servers))
        for server in order:
            window = await measure(server, token, concurrency, warmup, seconds)
            if window.errors or not window.calls:
                raise SystemExit(
                    f"{server.flavour}/{server.variant}: {window.errors} failed calls, "
                    f"e.g. {window.error_sample}"
                )
            if progress:
                print(
                    f"  round {index + 1}/{rounds} {FLAVOUR_LABELS[server.flavour]:>5} "
                    f"{server.variant:<11} {window.calls_per_s:8,.0f} calls/s",
                    file=sys.stderr,
                    flush=True,
                )
            results[server.flavour][server.variant].append(window)
    return results


# --------------------------------------------------------------------------------------
# Report.


def spread(values: Sequence[float], fmt: str) -> str:
    """``median (min-max)``."""
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def median_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(known) if known else None


def _fmt(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else f"{value:{fmt}}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def micro_summary(micro: dict[str, list[float]]) -> dict[str, Any]:
    summary = {}
    for name, values in micro.items():
        deltas = [v - b for v, b in zip(values, micro["bare"], strict=True)]
        summary[name] = {
            "us_per_call": values,
            "median_us": statistics.median(values),
            "calls_per_s": 1e6 / statistics.median(values),
            "delta_vs_bare_us": statistics.median(deltas),
            "naive_over_variant": statistics.median(
                n / v for n, v in zip(micro["naive"], values, strict=True)
            ),
        }
    return summary


def e2e_summary(results: dict[str, dict[str, list[Window]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for flavour, variants in results.items():
        bare = variants["bare"]
        summary[flavour] = {}
        for variant, windows in variants.items():
            ratios = [w.calls_per_s / b.calls_per_s for w, b in zip(windows, bare, strict=True)]
            cpu_deltas = [
                w.server_cpu_us - b.server_cpu_us
                for w, b in zip(windows, bare, strict=True)
                if w.server_cpu_us is not None and b.server_cpu_us is not None
            ]
            summary[flavour][variant] = {
                "rounds": [w.__dict__ for w in windows],
                "calls_per_s": statistics.median(w.calls_per_s for w in windows),
                "ratio_to_bare": statistics.median(ratios),
                "ratios": ratios,
                "p50_ms": statistics.median(w.p50_ms for w in windows),
                "p99_ms": statistics.median(w.p99_ms for w in windows),
                "server_cpu_us": median_or_none([w.server_cpu_us for w in windows]),
                "delta_server_cpu_us": statistics.median(cpu_deltas) if cpu_deltas else None,
                "client_cpu_us": statistics.median(w.client_cpu_us for w in windows),
                "foreign_cores_max": max(
                    (w.foreign_cores for w in windows if w.foreign_cores is not None),
                    default=None,
                ),
            }
    return summary


def print_report(
    micro: dict[str, list[float]],
    e2e: dict[str, dict[str, list[Window]]],
    settings: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    micro_s, e2e_s = micro_summary(micro), e2e_summary(e2e)
    print(
        f"\n## 1. In process: intercept_service + handler call "
        f"({settings['micro_rounds']} interleaved rounds of {settings['micro_seconds']} s)\n"
    )
    rows = []
    for name in VARIANTS:
        s = micro_s[name]
        rows.append(
            [
                LABELS[name],
                spread(micro[name], ",.2f"),
                f"{s['calls_per_s']:,.0f}",
                f"{s['delta_vs_bare_us']:+,.2f}",
                f"{s['naive_over_variant']:.2f}x",
            ]
        )
    print(
        table(
            ["variant", "µs/call median (min-max)", "calls/s", "Δ µs vs bare", "naive ÷ this"], rows
        )
    )

    print(
        f"\n## 2. End to end: unary echo over loopback, aio client, "
        f"N={settings['concurrency']} in flight "
        f"({settings['rounds']} interleaved rounds of {settings['seconds']} s windows, "
        f"{settings['warmup']} s warm-up)\n"
    )
    rows = []
    for flavour, variants in e2e.items():
        for variant in variants:
            s = e2e_s[flavour][variant]
            windows = e2e[flavour][variant]
            ratios = s["ratios"]
            rows.append(
                [
                    FLAVOUR_LABELS[flavour],
                    LABELS[variant],
                    spread([w.calls_per_s for w in windows], ",.0f"),
                    "—" if variant == "bare" else f"**{spread(ratios, '.2f')}**",
                    f"{s['p50_ms']:.1f} / {s['p99_ms']:.1f}",
                    _fmt(s["server_cpu_us"], ",.0f"),
                    "—" if variant == "bare" else _fmt(s["delta_server_cpu_us"], "+,.0f"),
                    f"{s['client_cpu_us']:,.0f}",
                    _fmt(s["foreign_cores_max"], ".2f"),
                ]
            )
    print(
        table(
            [
                "server",
                "variant",
                "calls/s median (min-max)",
                "ratio to bare",
                "p50 / p99 ms",
                "server CPU µs/call",
                "Δ server CPU µs/call",
                "client CPU µs/call",
                "foreign cores (max)",
            ],
            rows,
        )
    )
    print(
        "\nRatios: median (min-max) of per-round ratios to bare, same server flavour, same round."
        "\nForeign cores: CPU used by other processes during a window (noise; compare with nproc)."
    )
    return micro_s, e2e_s


def environment() -> dict[str, Any]:
    try:
        from cryptography.hazmat.backends.openssl import backend

        openssl = backend.openssl_version_text()
    except Exception:  # informational only
        openssl = "unknown"
    return {
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "pyjwt": jwt.__version__,
        "cryptography": cryptography.__version__,
        "openssl": openssl,
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
    }


# --------------------------------------------------------------------------------------


def _choices(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
        unknown = [item for item in chosen if item not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}")
        return tuple(item for item in allowed if item in chosen)

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes (smoke test)")
    parser.add_argument("--rounds", type=int, default=3, help="end-to-end rounds (3)")
    parser.add_argument("--seconds", type=float, default=4.0, help="end-to-end window (4 s)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up per window (1 s)")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight (64)")
    parser.add_argument("--micro-rounds", type=int, default=7, help="in-process rounds (7)")
    parser.add_argument("--micro-seconds", type=float, default=0.5, help="in-process window")
    parser.add_argument(
        "--servers",
        type=_choices(FLAVOURS),
        default=FLAVOURS,
        metavar="LIST",
        help="end-to-end server flavours, comma-separated (sync,aio)",
    )
    parser.add_argument(
        "--variants",
        type=_choices((*VARIANTS, *OPTIONAL_VARIANTS)),
        default=VARIANTS,
        metavar="LIST",
        help="end-to-end variants, comma-separated (bare is always included): "
        + ",".join(VARIANTS)
        + "; also "
        + ",".join(OPTIONAL_VARIANTS)
        + " (a control: an interceptor that only calls on)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    parser.add_argument("--profile", action="store_true", help="cProfile the cache-hit path")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.variants = ("bare", *(v for v in args.variants if v != "bare"))
    if args.quick:
        args.rounds, args.seconds, args.warmup = 1, 0.3, 0.1
        args.micro_rounds, args.micro_seconds = 1, 0.05
    if min(args.rounds, args.micro_rounds, args.concurrency) < 1:
        parser.error("rounds and concurrency must be at least 1")
    if min(args.seconds, args.micro_seconds) <= 0 or args.warmup < 0:
        parser.error("windows must be positive")
    return args


@contextlib.contextmanager
def running_servers(
    jwks: dict[str, Any],
    issuer: str,
    flavours: Sequence[str],
    variants: Sequence[str],
    lifetime: float,
) -> Iterator[list[Server]]:
    servers = start_servers(jwks, issuer, flavours, variants, lifetime)
    try:
        yield servers
    finally:
        stop_servers(servers)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.serve:
        run_server(json.loads(sys.stdin.buffer.readline()))
        return

    issuer = TestIssuer()
    token = issuer.token(subject="bench-client", audience=AUDIENCE, lifetime=86_400)
    settings = {
        "rounds": args.rounds,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "micro_rounds": args.micro_rounds,
        "micro_seconds": args.micro_seconds,
        "servers": list(args.servers),
        "variants": list(args.variants),
        "sync_workers": SYNC_WORKERS,
        "token_bytes": len(token),
        "algorithm": "ES256",
    }
    env = environment()
    print(
        f"bearer_grpc interceptor benchmark: Python {env['python']}, grpcio {env['grpcio']}, "
        f"PyJWT {env['pyjwt']}, cryptography {env['cryptography']} ({env['openssl']}), "
        f"{env['nproc']} CPUs; ES256 token of {len(token)} B",
        flush=True,
    )

    calls = micro_calls(issuer, token)
    micro = run_micro(calls, args.micro_rounds, args.micro_seconds)

    windows = args.rounds * len(args.servers) * len(args.variants)
    lifetime = 300 + 2 * windows * (args.warmup + args.seconds + 1)
    with running_servers(
        issuer.jwks, issuer.issuer, args.servers, args.variants, lifetime
    ) as servers:
        e2e = asyncio.run(
            run_e2e(
                servers,
                token,
                rounds=args.rounds,
                concurrency=args.concurrency,
                warmup=args.warmup,
                seconds=args.seconds,
                progress=not args.quick,
            )
        )

    micro_s, e2e_s = print_report(micro, e2e, settings)
    if args.profile:
        profile_cache_hit(calls)
    if args.json is not None:
        document = {"settings": settings, "environment": env, "micro": micro_s, "e2e": e2e_s}
        args.json.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
