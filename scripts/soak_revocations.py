"""Soak, revocation section: how long a revocation takes to be seen, at its worst.

A real ``bearer-grpc serve`` (SQLite, loopback) with ``--streams`` WatchRevocations
streams open (1,000 by default: many verifiers' worth, read by ``WATCH_PROCESSES`` child
processes, as separate verifiers would be) and a few real verifiers following it
(``Verifier.from_token_service``, sync and asyncio, in this process). Then bursts of
concurrent RevokeToken calls, for a bounded time. For every revocation and every
observer (each stream, each verifier) the time from the moment RevokeToken was sent to
the moment the observer has it: a stream received the event, a verifier refuses the
token (``recheck``, polled every millisecond).

Reports the maximum of those times, with p50 and p99, and fails when the maximum reaches
``LAG_BOUND`` (the README's one second) or any observer missed a revocation.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import grpc

from bearer_grpc import Verifier
from bearer_grpc import aio as bearer_aio
from bearer_grpc._verifier.revocations import watch_request
from bearer_grpc.core.errors import TokenRevoked
from bearer_grpc.core.tokens import Principal
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc

LAG_BOUND = 1.0
"""Seconds within which every observer must see every revocation."""
STREAMS_PER_CHANNEL = 100
WATCH_PROCESSES = 1
"""Child processes reading the streams (time.monotonic is comparable across them)."""
POLL = 0.001
"""Seconds between two looks at the verifiers."""


@dataclass
class Observations:
    """When each observer saw each revocation (filled from several threads).

    An event may arrive before its RevokeToken call returned its sequence: arrivals are
    kept by sequence and matched with the send times at the end.
    """

    sent: dict[int, float] = field(default_factory=dict)  # token position: RevokeToken sent
    sequence: dict[int, int] = field(default_factory=dict)  # token position: its sequence
    arrivals: dict[int, list[float]] = field(default_factory=dict)  # sequence: stream times
    refused: dict[int, list[float]] = field(default_factory=dict)  # position: verifier times
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, sequence: int, at: float) -> None:
        with self.lock:
            self.arrivals.setdefault(sequence, []).append(at)

    def lags(self, *, streams: bool = True, verifiers: bool = True) -> list[float]:
        with self.lock:
            lags = []
            for position, sent in self.sent.items():
                seen = self.arrivals.get(self.sequence.get(position, -1), []) if streams else []
                seen = seen + (self.refused.get(position, []) if verifiers else [])
                lags += [at - sent for at in seen]
            return lags


@dataclass
class RevocationReport:
    """The section's outcome."""

    streams: int
    verifiers: int
    revocations: int
    observations: int
    missing: int
    lags: list[float]
    verifier_max: float

    def problems(self) -> list[str]:
        found = []
        if not self.revocations:
            found.append("no revocation was made")
        if self.missing:
            found.append(f"{self.missing} observations never arrived")
        worst = max(self.lags, default=math.inf)
        if worst >= LAG_BOUND:
            found.append(f"worst revocation lag {worst * 1000:.0f} ms >= {LAG_BOUND * 1000:.0f} ms")
        return found

    def line(self) -> str:
        ordered = sorted(self.lags)

        def at(share: float) -> float:
            if not ordered:
                return math.nan
            return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

        status = "PASS" if not self.problems() else "FAIL"
        return (
            f"soak-revocations: {status} streams={self.streams} verifiers={self.verifiers} "
            f"revocations={self.revocations} observations={self.observations} "
            f"missing={self.missing} lag_max={max(ordered, default=math.nan) * 1000:.1f}ms "
            f"lag_p50={at(0.5):.1f}ms lag_p99={at(0.99):.1f}ms "
            f"verifier_lag_max={self.verifier_max * 1000:.1f}ms"
        )


async def _watch(
    stub: pb_grpc.TokenServiceStub, after: int, arrivals: dict[int, list[float]]
) -> None:
    call = stub.WatchRevocations(watch_request(after), timeout=600)
    try:
        async for event in call:
            arrivals.setdefault(event.sequence, []).append(time.monotonic())
    except grpc.aio.AioRpcError as err:
        if err.code() != grpc.StatusCode.CANCELLED:
            raise
    finally:
        call.cancel()


async def _watch_many(target: str, streams: int, after: int, parent: Connection) -> None:
    """Open ``streams`` streams, say "ready", read them until told to stop, send back
    when each event arrived."""
    channels = [
        grpc.aio.insecure_channel(target) for _ in range(math.ceil(streams / STREAMS_PER_CHANNEL))
    ]
    stubs = [pb_grpc.TokenServiceStub(channel) for channel in channels]
    arrivals: dict[int, list[float]] = {}
    tasks = [
        asyncio.create_task(_watch(stubs[i % len(stubs)], after, arrivals)) for i in range(streams)
    ]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_reader(parent.fileno(), stop.set)
    await asyncio.sleep(1.0)  # the streams open (pacing, not a wait for a condition)
    parent.send("ready")
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()
    parent.send(arrivals)


def watch_process(target: str, streams: int, after: int, parent: Connection) -> None:
    """A child process's body: :func:`_watch_many`."""
    asyncio.run(_watch_many(target, streams, after, parent))


def _poll_verifiers(
    checks: list[Callable[[Principal], Any]],
    pending: dict[int, Principal],
    seen: Observations,
    stop: threading.Event,
) -> None:
    """Note when each verifier starts refusing each pending token (until ``stop``)."""
    waiting: dict[tuple[int, int], Principal] = {}
    while not stop.is_set():
        with seen.lock:
            for position, principal in pending.items():
                for index in range(len(checks)):
                    waiting[index, position] = principal
            pending.clear()
        now = time.monotonic()
        for (index, position), principal in list(waiting.items()):
            if isinstance(checks[index](principal), TokenRevoked):
                with seen.lock:
                    seen.refused.setdefault(position, []).append(now)
                del waiting[index, position]
        time.sleep(POLL)  # the polling period


async def run(
    target: str, secret: str, client_id: str, args: Any, loop_thread: Any
) -> RevocationReport:
    """Open the streams and verifiers, revoke in bursts, measure (see the module docstring)."""
    channels = [
        grpc.aio.insecure_channel(target)
        for _ in range(math.ceil(args.streams / STREAMS_PER_CHANNEL))
    ]
    stubs = [pb_grpc.TokenServiceStub(channel) for channel in channels]
    grant = pb.IssueTokenRequest(
        client_credentials=pb.ClientCredentialsGrant(client_id=client_id, client_secret=secret)
    )
    tokens = [
        (await stubs[0].IssueToken(grant, timeout=10)).access_token for _ in range(args.revocations)
    ]
    sync_verifiers = [
        Verifier.from_token_service(target, audience="soak") for _ in range(args.verifiers // 2)
    ]
    aio_verifiers = [
        bearer_aio.Verifier.from_token_service(target, audience="soak")
        for _ in range(args.verifiers - len(sync_verifiers))
    ]
    for verifier in aio_verifiers:
        loop_thread.run(verifier.start())
    principals = [[v.verify(t) for t in tokens] for v in sync_verifiers] + [
        [loop_thread.run(v.verify(t)) for t in tokens] for v in aio_verifiers
    ]
    verifiers: list[Any] = [*sync_verifiers, *aio_verifiers]
    seen = Observations()
    probe = stubs[0].WatchRevocations(watch_request(0), timeout=5)
    after = int(dict(await probe.initial_metadata()).get("bearer-grpc-cursor", "0"))
    probe.cancel()
    spawn = multiprocessing.get_context("spawn")
    children = []
    for share in range(WATCH_PROCESSES):
        ours, theirs = spawn.Pipe()
        count = args.streams // WATCH_PROCESSES + (share < args.streams % WATCH_PROCESSES)
        child = spawn.Process(target=watch_process, args=(target, count, after, theirs))
        child.start()
        children.append((child, ours))
    for _, pipe in children:
        if not pipe.poll(60) or pipe.recv() != "ready":
            raise SystemExit("soak: the watch processes did not start")
    pending: dict[int, Principal] = {}
    stop = threading.Event()
    poller = threading.Thread(
        target=_poll_verifiers,
        args=([v.recheck for v in verifiers], pending, seen, stop),
        daemon=True,
    )
    poller.start()
    observers = args.streams + len(verifiers)
    try:
        index = 0
        while index < len(tokens):
            burst = tokens[index : index + args.burst]

            async def revoke(token: str, position: int) -> None:
                with seen.lock:
                    seen.sent[position] = time.monotonic()
                    pending[position] = principals[0][position]  # for the verifiers to refuse
                response = await stubs[position % len(stubs)].RevokeToken(
                    pb.RevokeTokenRequest(token=token), timeout=10
                )
                with seen.lock:
                    seen.sequence[position] = response.sequence

            await asyncio.gather(*(revoke(t, index + i) for i, t in enumerate(burst)))
            index += len(burst)
            await asyncio.sleep(args.pause)  # pacing between bursts
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:  # the verifiers' last refusals
            if len(seen.lags(streams=False)) >= len(tokens) * len(verifiers):
                break
            await asyncio.sleep(0.05)  # pacing while the last events arrive
        await asyncio.sleep(1.0)  # and the streams' (counted as missing if later)
    finally:
        stop.set()
        poller.join(5)
        for child, pipe in children:
            pipe.send("stop")
            if pipe.poll(30):
                for sequence, times in pipe.recv().items():
                    for at in times:
                        seen.saw(sequence, at)
            child.join(30)
        for channel in channels:
            await channel.close()
        for verifier in sync_verifiers:
            verifier.close()
        for verifier in aio_verifiers:
            loop_thread.run(verifier.aclose())
    lags = seen.lags()
    return RevocationReport(
        streams=args.streams,
        verifiers=len(verifiers),
        revocations=len(seen.sent),
        observations=len(lags),
        missing=len(seen.sent) * observers - len(lags),
        lags=lags,
        verifier_max=max(seen.lags(streams=False), default=math.nan),
    )
