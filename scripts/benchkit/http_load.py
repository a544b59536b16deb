"""The HTTP load generator: a closed loop of N requests in flight on one aiohttp client
session (keep-alive connections), measured as :func:`benchkit.load.measure` measures gRPC:
requests/s, latency percentiles, server and client CPU per request, other processes' CPU.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

import aiohttp

from benchkit.load import Window, _own_cpu
from benchkit.procs import machine_busy, proc_cpu
from benchkit.stats import percentile


@dataclass
class HttpLoad:
    """What to send: ``method`` ``url`` with ``body`` and ``headers``; 200 (or 304) expected."""

    url: str
    server_pid: int
    method: str = "GET"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    expect: int = 200


async def measure_http(load: HttpLoad, concurrency: int, warmup: float, seconds: float) -> Window:
    """Run ``concurrency`` callers for ``warmup + seconds``; time the last ``seconds``."""
    latencies: list[float] = []
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        begin = time.perf_counter()
        start, end = begin + warmup, begin + warmup + seconds

        async def worker() -> None:
            clock = time.perf_counter
            while True:
                sent = clock()
                if sent >= end:
                    return
                try:
                    async with session.request(
                        load.method, load.url, data=load.body or None, headers=load.headers
                    ) as response:
                        await response.read()
                        status = response.status
                except aiohttp.ClientError as err:
                    errors.append(f"{type(err).__name__}: {err}")
                    continue
                if status != load.expect:
                    errors.append(f"HTTP {status}")
                    continue
                done = clock()
                if start <= done < end:
                    latencies.append(done - sent)

        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        cpu0 = (proc_cpu(load.server_pid), _own_cpu(), machine_busy(), time.perf_counter())
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        cpu1 = (proc_cpu(load.server_pid), _own_cpu(), machine_busy(), time.perf_counter())
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
