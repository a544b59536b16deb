"""``kill -9`` of ``bearer-grpc serve`` in the middle of a burst of IssueToken and
RevokeToken calls, on SQLite and (with ``BEARER_GRPC_TEST_PG_DSN``) PostgreSQL.

After a restart on the same store, everything the server acknowledged holds: every
revocation it answered OK is in force (VerifyToken says TOKEN_REVOKED, the
WatchRevocations backlog holds its jti at the sequence it answered with), every token it
issued verifies unless a revocation of it was sent, the store opens cleanly and holds no
half-written row.
"""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field

import grpc
import pytest
from sqlalchemy import create_engine, text

from bearer_grpc._verifier.revocations import watch_request
from bearer_grpc.core.wire import BACKLOG_END_KEY
from bearer_grpc.store import open_store
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.faults.conftest import AUDIENCE, TIMEOUT, Deployment, token_stub

pytestmark = pytest.mark.process

ISSUERS = 3
REVOKERS = 3
KILL_AFTER = 25
"""Acknowledged revocations (and issued tokens) before the server is killed."""
BURST_SECONDS = 60.0


@dataclass
class Ledger:
    """What the server acknowledged, and what was in flight when it died."""

    issued: list[str] = field(default_factory=list)
    revoked: dict[str, int] = field(default_factory=dict)  # token -> sequence answered
    revoke_sent: set[str] = field(default_factory=set)  # acknowledged or not
    unexpected: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    enough: threading.Event = field(default_factory=threading.Event)
    killed: threading.Event = field(default_factory=threading.Event)

    def note_failure(self, err: BaseException) -> None:
        if not self.killed.is_set():
            with self.lock:
                self.unexpected.append(err)

    def check_enough(self) -> None:
        if len(self.revoked) >= KILL_AFTER and len(self.issued) >= 2 * KILL_AFTER:
            self.enough.set()


def jti_of(token: str) -> str:
    segment = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    jti: str = claims["jti"]
    return jti


def test_acknowledged_writes_survive_kill_9(any_deployment: Deployment) -> None:
    deployment = any_deployment
    secret = deployment.add_client("svc")
    grant = pb.ClientCredentialsGrant(client_id="svc", client_secret=secret)
    deployment.start()
    target = deployment.target
    ledger = Ledger()
    to_revoke: queue.Queue[str] = queue.Queue()
    deadline = time.monotonic() + BURST_SECONDS

    def issuer() -> None:
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.TokenServiceStub(channel)
            n = 0
            while time.monotonic() < deadline and not ledger.killed.is_set():
                try:
                    response = stub.IssueToken(
                        pb.IssueTokenRequest(client_credentials=grant), timeout=TIMEOUT
                    )
                except grpc.RpcError as err:
                    ledger.note_failure(err)
                    return
                with ledger.lock:
                    ledger.issued.append(response.access_token)
                    ledger.check_enough()
                n += 1
                if n % 2:  # every other token is handed to the revokers
                    to_revoke.put(response.access_token)

    def revoker() -> None:
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.TokenServiceStub(channel)
            while time.monotonic() < deadline and not ledger.killed.is_set():
                try:
                    token = to_revoke.get(timeout=0.1)
                except queue.Empty:
                    continue
                with ledger.lock:
                    ledger.revoke_sent.add(token)
                try:
                    answer = stub.RevokeToken(pb.RevokeTokenRequest(token=token), timeout=TIMEOUT)
                except grpc.RpcError as err:
                    ledger.note_failure(err)
                    return
                with ledger.lock:  # OK returned: the revocation is acknowledged
                    ledger.revoked[token] = answer.sequence
                    ledger.check_enough()

    threads = [threading.Thread(target=issuer, name=f"issue-{i}") for i in range(ISSUERS)]
    threads += [threading.Thread(target=revoker, name=f"revoke-{i}") for i in range(REVOKERS)]
    try:
        for thread in threads:
            thread.start()
        assert ledger.enough.wait(BURST_SECONDS), (len(ledger.issued), len(ledger.revoked))
        ledger.killed.set()
        deployment.kill()  # mid-burst: calls of every thread are in flight
    finally:
        ledger.killed.set()
        for thread in threads:
            thread.join(BURST_SECONDS)
    assert not ledger.unexpected, ledger.unexpected
    with ledger.lock:
        issued, revoked, sent = list(ledger.issued), dict(ledger.revoked), set(ledger.revoke_sent)
    assert len(revoked) >= KILL_AFTER

    _check_store(deployment)
    deployment.start()
    with token_stub(target) as stub:
        backlog = _backlog(stub)
        for token, sequence in revoked.items():
            assert backlog.get(sequence) == jti_of(token), "acknowledged revocation lost"
        for token in issued:
            answer = stub.VerifyToken(
                pb.VerifyTokenRequest(token=token, audience=AUDIENCE), timeout=TIMEOUT
            )
            if token in revoked:
                assert answer.reason == "TOKEN_REVOKED"
            elif token in sent:  # in flight at the kill: either outcome, but a whole one
                assert answer.active or answer.reason == "TOKEN_REVOKED"
                assert answer.active == (jti_of(token) not in backlog.values())
            else:
                assert answer.active, answer.reason
    deployment.stop()


def _backlog(stub: pb_grpc.TokenServiceStub) -> dict[int, str]:
    """The WatchRevocations backlog from the start: jti by sequence."""
    call = stub.WatchRevocations(watch_request(0), timeout=TIMEOUT)
    metadata = dict(call.initial_metadata())
    end = int(metadata[BACKLOG_END_KEY])
    events: dict[int, str] = {}
    for event in call:
        events[event.sequence] = event.token_id
        if event.sequence >= end:
            break
    call.cancel()
    return events


def _check_store(deployment: Deployment) -> None:
    """The store after the kill, before any server touched it again: consistent."""
    if deployment.store is None:
        with contextlib.closing(sqlite3.connect(deployment.sqlite_file)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    engine = create_engine(deployment.url)
    try:
        with engine.connect() as conn:
            half_written = conn.execute(
                text(
                    "SELECT count(*) FROM revocations"
                    " WHERE jti = '' OR expires_at <= 0 OR revoked_at <= 0 OR sequence <= 0"
                )
            ).scalar_one()
            assert half_written == 0
            bad_keys = conn.execute(
                text(
                    "SELECT count(*) FROM signing_keys"
                    " WHERE kid = '' OR public_jwk = '' OR length(private_key) = 0"
                )
            ).scalar_one()
            assert bad_keys == 0
    finally:
        engine.dispose()
    store = open_store(deployment.url)  # opens (and checks its schema version) cleanly
    store.close()
