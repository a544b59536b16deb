"""Measure issue and verify rates, interleaved, and print medians.

In process: TokenVerifier.verify (ES256) next to PyJWT's own ``jwt.decode`` on the same
token. Over gRPC, against a real ``bearer-grpc serve`` subprocess on loopback with an
embedded SQLite store: IssueToken (client credentials) and VerifyToken, each from 8 client
threads. Rounds alternate between the measurements so machine noise hits all of them alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import jwt

from bearer_grpc.core.keys import PublicKeySet, SigningKey
from bearer_grpc.core.tokens import TokenVerifier, issue_access_token
from bearer_grpc.service.admin import Admin
from bearer_grpc.store import open_store, sqlite_url
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc

THREADS = 8


def rate_in_process(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` in a tight loop for ``seconds``."""
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            fn()
        count += 50
    return count / (time.perf_counter() - start)


def rate_threads(fn: Callable[[], object], seconds: float, threads: int = THREADS) -> float:
    """Calls per second of ``fn`` from ``threads`` threads for ``seconds``."""
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        while time.perf_counter() < stop:
            fn()
            counts[i] += 1

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - start)


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """Run ``bearer-grpc serve`` on a free port; return the process and its target."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bearer_grpc",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(data_dir),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        record = json.loads(line)
        if record.get("message") == "listening":
            threading.Thread(target=lambda: proc.stderr.read(), daemon=True).start()  # type: ignore[union-attr]
            return proc, f"127.0.0.1:{record['port']}"
    raise SystemExit("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="1 round of 0.5 s")
    args = parser.parse_args()
    rounds, seconds = (1, 0.5) if args.quick else (args.rounds, args.seconds)

    key = SigningKey.generate("ES256")
    keys = PublicKeySet({"keys": [dict(key.jwk)]})
    now = int(time.time())
    token = issue_access_token(
        key,
        issuer="bench",
        subject="svc",
        audience="orders",
        scopes=["a"],
        client_id="svc",
        lifetime=900,
        now=now,
    ).token
    verifier = TokenVerifier(keys, issuer="bench", clock=time.time)
    public_key = keys[key.kid]

    def pyjwt_decode() -> object:
        return jwt.decode(
            token, public_key, algorithms=["ES256"], audience="orders", issuer="bench"
        )

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        proc, target = start_server(data_dir)
        try:
            store = open_store(sqlite_url(data_dir))
            client = Admin(store).add_client("bench", scopes=["a"], audiences=["orders"])
            store.close()
            channel = grpc.insecure_channel(target)
            stub = pb_grpc.TokenServiceStub(channel)
            issue_req = pb.IssueTokenRequest(
                client_credentials=pb.ClientCredentialsGrant(
                    client_id=client.client_id, client_secret=client.client_secret
                )
            )
            served = stub.IssueToken(issue_req).access_token
            verify_req = pb.VerifyTokenRequest(token=served, audience="orders")
            assert stub.VerifyToken(verify_req).active

            results: dict[str, list[float]] = {
                "pyjwt_decode": [],
                "verifier_verify": [],
                "issue_rpc": [],
                "verify_rpc": [],
            }
            for _ in range(rounds):
                results["pyjwt_decode"].append(rate_in_process(pyjwt_decode, seconds))
                results["verifier_verify"].append(
                    rate_in_process(lambda: verifier.verify(token, audience="orders"), seconds)
                )
                results["issue_rpc"].append(
                    rate_threads(lambda: stub.IssueToken(issue_req), seconds)
                )
                results["verify_rpc"].append(
                    rate_threads(lambda: stub.VerifyToken(verify_req), seconds)
                )
            channel.close()
        finally:
            proc.terminate()
            proc.wait(15)

    medians = {name: statistics.median(values) for name, values in results.items()}
    print(f"{'measurement':<34}{'median/s':>12}{'min/s':>12}{'max/s':>12}")
    labels = {
        "pyjwt_decode": "PyJWT jwt.decode ES256 (1 thread)",
        "verifier_verify": "TokenVerifier.verify ES256 (1 thr)",
        "issue_rpc": f"IssueToken RPC, SQLite ({THREADS} thr)",
        "verify_rpc": f"VerifyToken RPC ({THREADS} thr)",
    }
    for name, values in results.items():
        print(
            f"{labels[name]:<34}{medians[name]:>12,.0f}{min(values):>12,.0f}{max(values):>12,.0f}"
        )
    ratio = medians["verifier_verify"] / medians["pyjwt_decode"]
    print(f"verifier / PyJWT decode: {ratio:.2f}x ({rounds} interleaved rounds of {seconds} s)")


if __name__ == "__main__":
    main()
