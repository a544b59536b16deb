"""An acknowledged revocation survives ``kill -9`` of ``bearer-grpc serve`` (README: "WAL mode,
synchronous commits: an acknowledged revocation survives `kill -9`")."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import threading
import time
from pathlib import Path

import grpc
import pytest

from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.cli._support import secret_of
from tests.harness import Cli, running_server, start_server

pytestmark = pytest.mark.process

THREADS = 4
KILL_AFTER = 100
"""Acknowledged revocations before the server is killed."""
MAX_ROUNDS_PER_THREAD = 500
BURST_SECONDS = 30.0


def test_acknowledged_revocations_survive_kill_9(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    secret = secret_of(cli.ok("clients", "add", "svc", "--audiences", "orders", "--json"))
    grant = pb.ClientCredentialsGrant(client_id="svc", client_secret=secret)
    server = start_server(tmp_path)
    acknowledged: list[str] = []
    unexpected: list[BaseException] = []
    cut_off: list[str] = []  # threads whose calls failed because the server was killed
    lock = threading.Lock()
    enough = threading.Event()
    killed = threading.Event()
    deadline = time.monotonic() + BURST_SECONDS

    def burst() -> None:
        with grpc.insecure_channel(server.target) as channel:
            stub = pb_grpc.TokenServiceStub(channel)
            for _ in range(MAX_ROUNDS_PER_THREAD):
                if time.monotonic() > deadline:
                    return
                try:
                    issued = stub.IssueToken(
                        pb.IssueTokenRequest(client_credentials=grant), timeout=10
                    )
                    stub.RevokeToken(pb.RevokeTokenRequest(token=issued.access_token), timeout=10)
                except grpc.RpcError as err:
                    if killed.is_set():
                        cut_off.append(threading.current_thread().name)
                    else:
                        unexpected.append(err)
                    return
                with lock:  # RevokeToken returned OK: the revocation is acknowledged
                    acknowledged.append(issued.access_token)
                    if len(acknowledged) >= KILL_AFTER:
                        enough.set()

    threads = [threading.Thread(target=burst, name=f"burst-{i}") for i in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        assert enough.wait(BURST_SECONDS), f"only {len(acknowledged)} revocations acknowledged"
        killed.set()
        server.signal(signal.SIGKILL)  # mid-burst: the other threads have calls in flight
        assert server.wait() == -signal.SIGKILL
    finally:
        killed.set()
        server.kill()
        for thread in threads:
            thread.join(BURST_SECONDS)
    assert not unexpected, unexpected
    assert len(cut_off) == THREADS  # every thread was still bursting when the server died
    with lock:
        revoked = list(acknowledged)
    assert len(revoked) >= KILL_AFTER

    db = tmp_path / "bearer-grpc-data" / "bearer-grpc.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    with running_server(tmp_path) as restarted, restarted.channel() as channel:
        stub = pb_grpc.TokenServiceStub(channel)
        reasons = {
            stub.VerifyToken(
                pb.VerifyTokenRequest(token=token, audience="orders"), timeout=10
            ).reason
            for token in revoked
        }
        assert reasons == {"TOKEN_REVOKED"}
        assert restarted.stop() == 0
