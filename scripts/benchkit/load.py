"""The load generator: a closed loop of N unary calls in flight on one ``grpc.aio`` channel.

Requests and responses are raw bytes (no serializers), so one generator drives the echo,
``VerifyToken`` and ``IssueToken`` alike. A window records calls/s, latency percentiles,
the CPU the server and this process used per call, and the CPU other processes of the
machine used meanwhile ("foreign cores": noise).
"""

from __future__ import annotations

import asyncio
import math
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import grpc
import grpc.aio

from benchkit.procs import machine_busy, proc_cpu
from benchkit.stats import percentile

Metadata = tuple[tuple[str, str], ...] | None


@dataclass
class Window:
    """One measurement window against one server."""

    calls_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float | None
    client_cpu_us: float
    server_main_cpu_us: float | None  # of server_cpu_us, the main thread's (the event loop)
    foreign_cores: float | None
    calls: int
    errors: int = 0
    error_sample: list[str] = field(default_factory=list)


@dataclass
class Load:
    """What to call: ``method`` on ``target`` with ``request``; metadata per call index."""

    target: str
    method: str
    request: bytes
    metadata: Callable[[int], Metadata]
    server_pid: int


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(load: Load, concurrency: int, warmup: float, seconds: float) -> Window:
    """Run ``concurrency`` callers for ``warmup + seconds``; time the last ``seconds``."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = 0
    async with grpc.aio.insecure_channel(load.target) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
        call: Any = channel.unary_unary(load.method)
        begin = time.perf_counter()
        start, end = begin + warmup, begin + warmup + seconds

        async def worker() -> None:
            nonlocal counter
            clock = time.perf_counter
            while True:
                sent = clock()
                if sent >= end:
                    return
                metadata = load.metadata(counter)
                counter += 1
                try:
                    await call(load.request, metadata=metadata, timeout=30)
                except grpc.aio.AioRpcError as err:
                    errors.append(f"{err.code().name}: {err.details()}")
                    continue
                done = clock()
                if start <= done < end:
                    latencies.append(done - sent)

        before, after = await closed_loop(worker, concurrency, start, end, load.server_pid)
    return window_of(latencies, errors, seconds, before, after)


async def closed_loop(
    worker: Callable[[], Awaitable[None]], concurrency: int, start: float, end: float, pid: int
) -> tuple[Mark, Mark]:
    """Run ``concurrency`` copies of ``worker`` (each stops by itself after ``end``); mark
    the CPU counters of server ``pid`` at ``start`` and at ``end``."""
    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    before = cpu_mark(pid)
    await asyncio.sleep(max(0.0, end - time.perf_counter()))
    after = cpu_mark(pid)
    await asyncio.gather(*tasks)
    return before, after


class Mark(NamedTuple):
    """CPU seconds used so far, and the wall clock."""

    server: float | None
    server_main: float | None  # the server's main thread
    own: float  # this process
    machine: float | None  # every process of the machine
    wall: float


def cpu_mark(server_pid: int) -> Mark:
    """Where the CPU counters stand now (take one before and one after a window)."""
    return Mark(
        proc_cpu(server_pid),
        proc_cpu(server_pid, main_thread=True),
        _own_cpu(),
        machine_busy(),
        time.perf_counter(),
    )


def _spent(before: float | None, after: float | None) -> float | None:
    return after - before if before is not None and after is not None else None


def window_of(
    latencies: list[float], errors: list[str], seconds: float, before: Mark, after: Mark
) -> Window:
    """The :class:`Window` of calls that took ``latencies`` between two marks."""
    wall = after.wall - before.wall
    count = len(latencies)
    server_cpu = _spent(before.server, after.server)
    server_main = _spent(before.server_main, after.server_main)
    client_cpu = after.own - before.own
    machine = _spent(before.machine, after.machine)
    foreign = None
    if server_cpu is not None and machine is not None:
        foreign = max(0.0, (machine - server_cpu - client_cpu) / wall)
    latencies.sort()
    per_call = 1e6 / count if count else math.nan
    return Window(
        calls_per_s=count / seconds,
        p50_ms=percentile(latencies, 50) * 1e3,
        p99_ms=percentile(latencies, 99) * 1e3,
        server_cpu_us=server_cpu * per_call if server_cpu is not None else None,
        client_cpu_us=client_cpu * per_call,
        server_main_cpu_us=server_main * per_call if server_main is not None else None,
        foreign_cores=foreign,
        calls=count,
        errors=len(errors),
        error_sample=errors[:3],
    )


def checked(name: str, window: Window) -> Window:
    """``window``, unless calls failed or none completed (then SystemExit)."""
    if window.errors or not window.calls:
        raise SystemExit(f"{name}: {window.errors} failed calls, e.g. {window.error_sample}")
    return window
