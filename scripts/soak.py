"""Soak: many concurrent clients against protected echo services, with token churn.

A real TokenService (``bearer-grpc serve`` subprocess, SQLite in a temporary directory,
loopback only) and, in this process, two protected Echo services (``bearer_grpc.testing``):
a sync ``grpc.server`` and a ``grpc.aio.server``, each behind ``BearerServerInterceptor`` with a
verifier attached by ``from_token_service`` (a small verified-token cache, so eviction
really happens). Then, for a bounded time and number of calls:

- ``--clients`` concurrent clients (half per server) call all four RPC kinds, each call
  with a token picked from a growing pool of distinct tokens (sometimes a revoked one);
- on the TokenService: one task keeps issuing tokens into the pool, one revokes some of
  them (RevokeToken), one verifies random ones (VerifyToken).

Expected: a call with a token whose revocation was acknowledged more than
``REVOCATION_DEADLINE`` seconds before it started is refused (UNAUTHENTICATED "token
revoked"); a call with a token never revoked succeeds; a token whose revocation is in
flight may go either way. Anything else is an unexpected error. Memory is sampled
(RSS of this process) and each verifier's cache size is checked against its maximum.

Then the revocation section (``soak_revocations``): concurrent revocations while 1,000
WatchRevocations streams are open and several verifiers follow; it reports the worst
time for a revocation to be seen (and p50, p99), which must stay under a second.

Prints one summary line per section and exits 1 on any unexpected error or bound
violation::

    scripts/soak                   # 60 s, 64 clients; then 300 revocations
    scripts/soak --quick           # a few seconds each, 250 streams (CI)
    scripts/soak --duration 300 --clients 128 --calls 1000000
    scripts/soak --section revocations --revocations 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import soak_revocations

from bearer_grpc import BearerServerInterceptor, Verifier
from bearer_grpc import aio as bearer_aio
from bearer_grpc.service.admin import Admin
from bearer_grpc.store import open_store, sqlite_url
from bearer_grpc.testing import KINDS, Echo, Kind, LoopThread, bearer, call_aio, serve, serve_aio
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc

ANSWERS: dict[Kind, int] = {
    "unary_unary": 1,
    "unary_stream": 2,
    "stream_unary": 1,
    "stream_stream": 2,
}
"""Responses of each kind (the Echo streams two answers; a bidi call sends two requests)."""
AUDIENCE = "soak"
CLIENT_ID = "soak-client"
CALL_TIMEOUT = 10.0
REVOCATION_DEADLINE = 2.0
"""Seconds after an acknowledged revocation by which every verifier must refuse it."""
REVOKE_EVERY = 10
"""One issued token in this many is revoked."""
REVOKED_SHARE = 0.05
"""Share of client calls made with a revoked token."""
RSS_GROWTH_LIMIT = 64 * 1024 * 1024
"""Most RSS may grow after warm-up (the first third of the run) before it is a leak."""
START_TIMEOUT = 30.0
ISSUE_RATE = 100.0
"""Tokens issued per second (the pool of distinct tokens grows at this rate)."""
VERIFY_RATE = 50.0
"""VerifyToken calls per second."""
STREAMING_REQUESTS = ("stream_unary", "stream_stream")
LIBRARY_RACE = "INTERNAL: Internal error from Core"
"""What a ``grpc.aio`` client reports, instead of the server's status, when the server
ends a request-streaming call before reading the requests (grpc/grpc#36066): a refusal
may come out as this. Counted apart, and only tolerated where a refusal was due."""


# -- the protected echo service ---------------------------------------------------------


@contextlib.contextmanager
def sync_echo(verifier: Verifier) -> Iterator[str]:
    """The kit's Echo behind the sync interceptor; yields its target."""
    interceptors = [BearerServerInterceptor(verifier)]
    with serve([Echo().handler()], interceptors=interceptors, max_workers=16) as target:
        yield target


@contextlib.contextmanager
def aio_echo(verifier: bearer_aio.Verifier, loop: LoopThread) -> Iterator[str]:
    """The kit's Echo behind the aio interceptor, on ``loop``; yields its target."""
    interceptors = [bearer_aio.BearerServerInterceptor(verifier)]
    with loop.context(serve_aio([Echo().aio_handler()], interceptors=interceptors)) as target:
        loop.run(verifier.start())
        try:
            yield target
        finally:
            loop.run(verifier.aclose())


# -- the TokenService --------------------------------------------------------------------


@contextlib.contextmanager
def token_service(data_dir: Path, *serve_args: str) -> Iterator[tuple[str, str]]:
    """``bearer-grpc serve`` on 127.0.0.1, a free port; yields (target, client secret)."""
    store = open_store(sqlite_url(data_dir))
    try:
        secret = Admin(store).add_client(CLIENT_ID, scopes=(), audiences=(AUDIENCE,)).client_secret
    finally:
        store.close()
    log_path = data_dir / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEARER_GRPC_")}
    argv = [sys.executable, "-m", "bearer_grpc", "serve", "--listen", "127.0.0.1:0"]
    argv += ["--data-dir", str(data_dir), "--log-level", "info", *serve_args]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        yield f"127.0.0.1:{_listening_port(proc, log_path)}", secret
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


def _listening_port(proc: subprocess.Popen[bytes], log_path: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and record.get("message") == "listening":
                    return int(record["port"])
        if proc.poll() is not None:
            raise SystemExit(f"token service exited {proc.returncode}:\n{log_path.read_text()}")
        time.sleep(0.05)
    raise SystemExit("token service did not start listening")


# -- the traffic -------------------------------------------------------------------------


@dataclass
class Tally:
    """Everything the soak counts (one event loop writes it; samplers only read)."""

    calls: Counter[str] = field(default_factory=Counter)
    refused_revoked: int = 0
    library_race: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    issued: int = 0
    revocations: int = 0
    verified: int = 0
    rss: list[int] = field(default_factory=list)
    cache: dict[str, int] = field(default_factory=dict)  # peak size per server
    cache_violations: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(text)
        else:
            self.errors.append("...")
            del self.errors[20:-1]


@dataclass
class Pool:
    """Issued tokens and what is known about their revocation."""

    tokens: list[str] = field(default_factory=list)
    revoke_sent: set[str] = field(default_factory=set)
    revoked_at: dict[str, float] = field(default_factory=dict)  # acknowledged, monotonic

    def expect(self, token: str, started: float) -> str:
        """``ok``, ``refused`` or ``either`` for a call started at ``started``."""
        acked = self.revoked_at.get(token)
        if acked is not None and started > acked + REVOCATION_DEADLINE:
            return "refused"
        if token in self.revoke_sent:
            return "either"
        return "ok"


@dataclass
class Limits:
    """When the soak stops."""

    deadline: float
    calls: int
    made: int = 0

    def go(self) -> bool:
        self.made += 1
        return self.made <= self.calls and time.monotonic() < self.deadline

    def running(self) -> bool:
        return self.made < self.calls and time.monotonic() < self.deadline


async def call(channel: grpc.aio.Channel, kind: Kind, token: str) -> str:
    """One Echo call of ``kind`` with ``token`` (raises on failure); ``ok``, or what was
    wrong with the answers (their count, or the caller the handler saw)."""
    answers = await call_aio(channel, kind, metadata=bearer(token), timeout=CALL_TIMEOUT)
    if len(answers) != ANSWERS[kind]:
        return f"{len(answers)} answers"
    seen = {answer.subject for answer in answers}
    return "ok" if seen == {CLIENT_ID} else f"handler saw {sorted(map(str, seen))}"


async def client(
    number: int, target: str, pool: Pool, tally: Tally, limits: Limits, rng: random.Random
) -> None:
    """Call ``target`` until the limits are reached, checking every outcome."""
    async with grpc.aio.insecure_channel(target) as channel:
        kind_index = number
        while limits.go():
            kind = KINDS[kind_index % len(KINDS)]
            kind_index += 1
            revoked = list(pool.revoked_at) if rng.random() < REVOKED_SHARE else []
            token = rng.choice(revoked) if revoked else rng.choice(pool.tokens)
            started = time.monotonic()
            expected = pool.expect(token, started)
            try:
                outcome = await call(channel, kind, token)
            except grpc.aio.AioRpcError as err:
                revoked_answer = (
                    err.code() == grpc.StatusCode.UNAUTHENTICATED
                    and err.details() == "token revoked"
                )
                outcome = "refused" if revoked_answer else f"{err.code().name}: {err.details()}"
            tally.latencies.append(time.monotonic() - started)
            tally.calls[kind] += 1
            if expected == "ok" and token in pool.revoke_sent:
                expected = "either"  # its revocation was sent during the call
            if outcome == "refused":
                tally.refused_revoked += 1
            if outcome == expected or (expected == "either" and outcome in ("ok", "refused")):
                continue
            if expected != "ok" and kind in STREAMING_REQUESTS and outcome == LIBRARY_RACE:
                tally.library_race += 1  # a refusal, misreported by the aio client
                continue
            tally.error(f"{kind} on {target}: expected {expected}, got {outcome}")


async def issuer(
    stub: pb_grpc.TokenServiceAsyncStub,
    secret: str,
    pool: Pool,
    tally: Tally,
    limits: Limits,
    rng: random.Random,
) -> None:
    """Keep issuing tokens into the pool; revoke one in ``REVOKE_EVERY``."""
    grant = pb.ClientCredentialsGrant(client_id=CLIENT_ID, client_secret=secret)
    request = pb.IssueTokenRequest(client_credentials=grant)
    while limits.running():
        await asyncio.sleep(1 / ISSUE_RATE)  # pacing: a steady rate, not a flood
        try:
            response = await stub.IssueToken(request, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as err:
            tally.error(f"IssueToken: {err.code().name}: {err.details()}")
            continue
        tally.issued += 1
        pool.tokens.append(response.access_token)
        if tally.issued % REVOKE_EVERY == 0:
            victim = rng.choice(pool.tokens)
            if victim not in pool.revoke_sent:
                asyncio.get_running_loop().create_task(revoke(stub, victim, pool, tally))


async def revoke(stub: pb_grpc.TokenServiceAsyncStub, token: str, pool: Pool, tally: Tally) -> None:
    """RevokeToken, then note when it was acknowledged."""
    pool.revoke_sent.add(token)
    try:
        await stub.RevokeToken(pb.RevokeTokenRequest(token=token), timeout=CALL_TIMEOUT)
    except grpc.aio.AioRpcError as err:
        tally.error(f"RevokeToken: {err.code().name}: {err.details()}")
        return
    pool.revoked_at[token] = time.monotonic()
    tally.revocations += 1


async def checker(
    stub: pb_grpc.TokenServiceAsyncStub,
    pool: Pool,
    tally: Tally,
    limits: Limits,
    rng: random.Random,
) -> None:
    """VerifyToken on random tokens: active unless a revocation was acknowledged."""
    while limits.running():
        await asyncio.sleep(1 / VERIFY_RATE)  # pacing
        token = rng.choice(pool.tokens)
        acked_before = token in pool.revoked_at
        sent_before = token in pool.revoke_sent
        request = pb.VerifyTokenRequest(token=token, audience=AUDIENCE)
        try:
            answer = await stub.VerifyToken(request, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as err:
            tally.error(f"VerifyToken: {err.code().name}: {err.details()}")
            continue
        tally.verified += 1
        if acked_before and answer.reason != "TOKEN_REVOKED":
            tally.error(f"VerifyToken: revoked token answered {answer.active} {answer.reason}")
        elif not sent_before and not answer.active and token not in pool.revoke_sent:
            tally.error(f"VerifyToken: valid token refused: {answer.reason}")


def rss_bytes() -> int:
    """This process's resident set size now (Linux), or its peak elsewhere."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def sampler(verifiers: dict[str, Any], cache_max: int, tally: Tally, limits: Limits) -> None:
    """Sample RSS and the verifiers' cache sizes until the end."""
    while limits.running():
        tally.rss.append(rss_bytes())
        for name, verifier in verifiers.items():
            size = len(verifier.local.cache)
            tally.cache[name] = max(tally.cache.get(name, 0), size)
            if size > cache_max:
                tally.cache_violations.append(f"{name} cache {size} > {cache_max}")
        await asyncio.sleep(0.1)  # the sampling period


async def soak(
    args: argparse.Namespace,
    service: str,
    secret: str,
    echoes: dict[str, str],
    verifiers: dict[str, Any],
) -> tuple[Tally, Pool, float]:
    tally, pool, rng = Tally(), Pool(), random.Random(args.seed)
    async with grpc.aio.insecure_channel(service) as channel:
        stub = pb_grpc.TokenServiceStub(channel)
        grant = pb.ClientCredentialsGrant(client_id=CLIENT_ID, client_secret=secret)
        for _ in range(args.clients):  # a first pool, so every client has tokens at once
            response = await stub.IssueToken(
                pb.IssueTokenRequest(client_credentials=grant), timeout=CALL_TIMEOUT
            )
            pool.tokens.append(response.access_token)
        started = time.monotonic()
        limits = Limits(deadline=started + args.duration, calls=args.calls)
        targets = list(echoes.values())
        tasks = [
            client(i, targets[i % len(targets)], pool, tally, limits, random.Random(rng.random()))
            for i in range(args.clients)
        ]
        tasks.append(issuer(stub, secret, pool, tally, limits, random.Random(rng.random())))
        tasks.append(checker(stub, pool, tally, limits, random.Random(rng.random())))
        tasks.append(sampler(verifiers, args.cache_size, tally, limits))
        await asyncio.gather(*tasks)
        duration = time.monotonic() - started
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if pending:  # revocations still in flight
            await asyncio.wait(pending, timeout=CALL_TIMEOUT)
    return tally, pool, duration


def percentile(values: list[float], share: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds (CI)")
    parser.add_argument("--duration", type=float, help="seconds (default 60; --quick 4)")
    parser.add_argument("--calls", type=int, help="most client calls (default unbounded)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (64)")
    parser.add_argument(
        "--cache-size", type=int, help="verifier cache max (default 1000; --quick 100)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument(
        "--section",
        choices=("all", "echo", "revocations"),
        default="all",
        help="which sections to run (default all)",
    )
    parser.add_argument(
        "--streams", type=int, help="revocation section: watch streams (1000; --quick 250)"
    )
    parser.add_argument(
        "--verifiers", type=int, default=4, help="revocation section: verifiers (4)"
    )
    parser.add_argument(
        "--revocations", type=int, help="revocation section: revocations (300; --quick 30)"
    )
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 4.0 if args.quick else 60.0
    if args.cache_size is None:
        args.cache_size = 100 if args.quick else 1000
    if args.calls is None:
        args.calls = 10**12
    if args.revocations is None:
        args.revocations = 15 if args.quick else 300
    if args.streams is None:
        args.streams = 250 if args.quick else 1000
    args.burst, args.pause = (3, 0.5) if args.quick else (4, 1.0)
    if args.clients < 2 or args.duration <= 0 or args.calls < 1 or args.cache_size < 1:
        parser.error("need --clients >= 2, --duration > 0, --calls >= 1, --cache-size >= 1")
    if args.streams < 1 or args.verifiers < 1 or args.revocations < 1:
        parser.error("need --streams, --verifiers and --revocations >= 1")

    status = 0
    if args.section in ("all", "echo"):
        status |= echo_section(args)
    if args.section in ("all", "revocations"):
        status |= revocation_section(args)
    return status


def echo_section(args: argparse.Namespace) -> int:
    """The protected echo services under load (see the module docstring)."""
    loop = LoopThread()
    with (
        tempfile.TemporaryDirectory(prefix="bearer-grpc-soak-") as tmp,
        token_service(Path(tmp)) as (service, secret),
    ):
        sync_verifier = Verifier.from_token_service(
            service, audience=AUDIENCE, cache_size=args.cache_size
        )
        aio_verifier = bearer_aio.Verifier.from_token_service(
            service, audience=AUDIENCE, cache_size=args.cache_size
        )
        verifiers = {"sync": sync_verifier, "aio": aio_verifier}
        try:
            with (
                sync_echo(sync_verifier) as sync_target,
                aio_echo(aio_verifier, loop) as aio_target,
            ):
                echoes = {"sync": sync_target, "aio": aio_target}
                tally, pool, duration = asyncio.run(soak(args, service, secret, echoes, verifiers))
        finally:
            sync_verifier.close()
            loop.close()
    return report(args, tally, pool, duration)


def revocation_section(args: argparse.Namespace) -> int:
    """Concurrent revocations under many watch streams and verifiers: the worst lag."""
    loop = LoopThread()
    streams = str(args.streams + 10)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bearer-grpc-soak-") as tmp,
            token_service(
                Path(tmp), "--watch-streams", streams, "--watch-streams-per-peer", streams
            ) as (service, secret),
        ):
            outcome = asyncio.run(soak_revocations.run(service, secret, CLIENT_ID, args, loop))
    finally:
        loop.close()
    print(outcome.line(), flush=True)
    for problem in outcome.problems():
        print(f"soak-revocations: error: {problem}", file=sys.stderr)
    return 1 if outcome.problems() else 0


def report(args: argparse.Namespace, tally: Tally, pool: Pool, duration: float) -> int:
    """Print the summary line; the exit status."""
    problems = list(tally.errors) + tally.cache_violations
    total = sum(tally.calls.values())
    if total == 0:
        problems.append("no calls made")
    distinct = len(pool.tokens)
    if distinct <= args.cache_size:
        problems.append(f"only {distinct} distinct tokens: the cache never had to evict")
    if tally.revocations == 0:
        problems.append("no revocation was acknowledged")
    warm = tally.rss[len(tally.rss) // 3] if tally.rss else 0
    peak = max(tally.rss, default=rss_bytes())
    if tally.rss and peak - warm > RSS_GROWTH_LIMIT:
        problems.append(f"RSS grew {(peak - warm) / 2**20:.1f} MiB after warm-up")
    kinds = " ".join(f"{kind}={tally.calls[kind]}" for kind in KINDS)
    caches = " ".join(f"{name}={size}/{args.cache_size}" for name, size in tally.cache.items())
    print(
        f"soak: {'PASS' if not problems else 'FAIL'} duration={duration:.1f}s "
        f"clients={args.clients} calls={total} ({kinds}) calls/s={total / duration:.0f} "
        f"errors={len(problems)} revocations={tally.revocations} "
        f"refused_revoked={tally.refused_revoked} aio_client_race={tally.library_race} "
        f"issued={tally.issued + args.clients} "
        f"verified={tally.verified} "
        f"p50={percentile(tally.latencies, 0.5) * 1000:.1f}ms "
        f"p99={percentile(tally.latencies, 0.99) * 1000:.1f}ms "
        f"peak_rss={peak / 2**20:.1f}MiB rss_growth={(peak - warm) / 2**20:.1f}MiB "
        f"cache={caches}",
        flush=True,
    )
    for problem in problems:
        print(f"soak: error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
