"""The HTTP load generator: a closed loop of N requests in flight on one aiohttp client
session (keep-alive connections), measured as :func:`benchkit.load.measure` measures gRPC:
requests/s, latency percentiles, server and client CPU per request, other processes' CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import aiohttp

from benchkit.load import Window, closed_loop, window_of


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

        before, after = await closed_loop(worker, concurrency, start, end, load.server_pid)
    return window_of(latencies, errors, seconds, before, after)
