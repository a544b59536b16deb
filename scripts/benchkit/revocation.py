"""Section "revocation": how long after a RevokeToken ack a verifier refuses the token.

A ``bearer_grpc.Verifier.from_token_service`` follows a real ``bearer-grpc serve``. For
each of ``count`` tokens: the verifier verifies it (now cached), RevokeToken is called, and
from its acknowledgement the verifier is polled (``lookup``, every 0.1 ms) until it raises
``TokenRevoked``; the time from sending the request is recorded too (a refusal can
precede the ack). One token at a time, so every latency is one revocation's own.

- ``single``: revoke on the replica the verifier follows (SQLite);
- ``cross_replica`` (PostgreSQL only): two ``bearer-grpc serve`` on one database; revoke on
  A, the verifier follows B, so the revocation travels A -> PostgreSQL -> B -> verifier.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

import bearer_grpc
from bearer_grpc.v1 import token_service_pb2 as pb
from benchkit import tokenservice
from benchkit.stats import median, percentile

POLL_INTERVAL = 0.0001
TIMEOUT = 10.0


def _refused(verifier: bearer_grpc.Verifier, token: str) -> bool:
    try:
        if verifier.lookup(token) is None:
            verifier.verify(token)
    except bearer_grpc.TokenRevoked:
        return True
    return False


def propagation(revoke_target: str, verify_target: str, tokens: list[str]) -> dict[str, Any]:
    """Latencies (ms) from RevokeToken's ack on ``revoke_target`` to a refusal by a verifier
    following ``verify_target``."""
    latencies: list[float] = []
    from_send: list[float] = []
    timeouts = 0
    with (
        bearer_grpc.Verifier.from_token_service(
            verify_target, audience=tokenservice.AUDIENCE
        ) as verifier,
        tokenservice.stub(revoke_target) as stub,
    ):
        for token in tokens:
            verifier.verify(token)
            sent = time.perf_counter()
            stub.RevokeToken(pb.RevokeTokenRequest(token=token), timeout=10)
            acked = time.perf_counter()
            while not _refused(verifier, token):
                if time.perf_counter() - acked > TIMEOUT:
                    timeouts += 1
                    break
                time.sleep(POLL_INTERVAL)
            else:
                refused = time.perf_counter()
                latencies.append((refused - acked) * 1e3)
                from_send.append((refused - sent) * 1e3)
    latencies.sort()
    from_send.sort()
    return {
        "revocations": len(tokens),
        "timeouts": timeouts,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1] if latencies else None,
        "mean_ms": sum(latencies) / len(latencies) if latencies else None,
        "median_ms": median(latencies),
        "latencies_ms": latencies,
        "from_send_p50_ms": percentile(from_send, 50),
        "from_send_p99_ms": percentile(from_send, 99),
    }


def run(settings: dict[str, Any], pg_dsn: str | None, progress: bool) -> dict[str, Any]:
    """Measure propagation; return the "revocation" section."""
    count = settings["revocations"]
    section: dict[str, Any] = {
        "method": "RevokeToken ack -> Verifier.from_token_service.lookup raises TokenRevoked "
        f"(polled every {POLL_INTERVAL * 1e3:g} ms), one revocation at a time",
    }
    with tokenservice.sqlite_store() as store:
        client = tokenservice.add_client(store)
        with tokenservice.serving(store) as [server]:
            tokens = list(tokenservice.issue_tokens(server.target, client, count))
            section["single"] = propagation(server.target, server.target, tokens)
    _progress(progress, "single (SQLite)", section["single"])
    if pg_dsn:
        with contextlib.ExitStack() as stack:
            store = stack.enter_context(tokenservice.pg_store(pg_dsn))
            client = tokenservice.add_client(store)
            a, b = stack.enter_context(tokenservice.serving(store, 2))
            tokens = list(tokenservice.issue_tokens(a.target, client, count))
            section["cross_replica"] = propagation(a.target, b.target, tokens)
        _progress(progress, "cross-replica (PostgreSQL)", section["cross_replica"])
    return section


def _progress(enabled: bool, name: str, result: dict[str, Any]) -> None:
    if enabled:
        print(
            f"  revocation {name}: p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms",
            file=sys.stderr,
            flush=True,
        )
