"""Section "grants": the client-credentials grant in one process, on an embedded SQLite store.

``TokenAuthority`` driven from an event loop, without a server around it, so that the figure
is the grant's own:

- ``thread``: each grant runs ``TokenAuthority.issue`` in a worker thread (the blocking
  driver: a read, then a write-locked confirmation, per token);
- ``loop``: ``TokenAuthority.issue_async`` (the client held in memory, confirmations of
  concurrent grants sent to the store together).

With 1 and with 16 grants in flight, in ABBA rounds: wall µs and process CPU µs per token,
and thread / loop per round, medianed.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bearer_grpc.service.admin import Admin
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.grants import ClientCredentialsGrant, Issued
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import open_store, sqlite_url
from benchkit.stats import median, ratios, round_order

IN_FLIGHT = (1, 16)
DRIVERS = {
    "thread": "TokenAuthority.issue in a worker thread",
    "loop": "TokenAuthority.issue_async",
}

Issue = Callable[[], Awaitable[Issued]]


async def _window(issue: Issue, in_flight: int, seconds: float) -> tuple[float, float]:
    """Wall and process-CPU µs per token, ``in_flight`` grants at a time for ``seconds``."""
    count = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await issue()
            count += 1

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(caller() for _ in range(in_flight)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall / count * 1e6, cpu / count * 1e6


async def _measure(authority: TokenAuthority, grant: ClientCredentialsGrant, settings: Any) -> Any:
    drivers: dict[str, Issue] = {
        "thread": lambda: asyncio.to_thread(authority.issue, grant),
        "loop": lambda: authority.issue_async(grant),
    }
    for issue in drivers.values():  # warm: the loop driver remembers the client
        await _window(issue, 1, settings["warmup"])
    samples: dict[tuple[str, int], list[tuple[float, float]]] = {
        (name, n): [] for name in drivers for n in IN_FLIGHT
    }
    for index in range(settings["rounds"]):
        for name, n in round_order(list(samples), index):
            samples[(name, n)].append(await _window(drivers[name], n, settings["seconds"]))
    return samples


def run(settings: dict[str, Any]) -> dict[str, Any]:
    """Measure both drivers in interleaved rounds; return the "grants" section."""
    with tempfile.TemporaryDirectory(prefix="bench-grants-") as tmp:
        store = open_store(sqlite_url(Path(tmp) / "data"))
        try:
            authority = TokenAuthority(store, ServiceSettings(issuer="https://bench.invalid"))
            authority.start()
            client = Admin(store).add_client("bench", scopes=["a"], audiences=["orders"])
            grant = ClientCredentialsGrant(client.client_id, client.client_secret)
            samples = asyncio.run(_measure(authority, grant, settings))
            authority.close()
        finally:
            store.close()
    section: dict[str, Any] = {
        "settings": {k: settings[k] for k in ("rounds", "seconds", "warmup")},
        "store": "SQLite",
        "unit": "µs per token: wall, and CPU of the whole process",
    }
    for n in IN_FLIGHT:
        entry: dict[str, Any] = {}
        for name, label in DRIVERS.items():
            walls = [wall for wall, _ in samples[(name, n)]]
            cpus = [cpu for _, cpu in samples[(name, n)]]
            entry[name] = {"label": label, "wall_us": median(walls), "cpu_us": median(cpus)}
            entry[name]["rounds_wall_us"] = walls
        thread = [wall for wall, _ in samples[("thread", n)]]
        loop = [wall for wall, _ in samples[("loop", n)]]
        entry["thread_over_loop"] = median(ratios(thread, loop))
        section[f"in_flight_{n}"] = entry
    return section
