"""WatchRevocations: backlog in order, live events within a second, resume, shutdown."""

from __future__ import annotations

import math
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from contextlib import closing, suppress
from pathlib import Path

import grpc
import pytest

from bearer_grpc._verifier.revocations import watch_request
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import open_store, sqlite_url
from bearer_grpc.store._engine import DATABASE_FILENAME
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import (
    RunningService,
    ServeProcess,
    add_user,
    call_error,
    jwt_segment,
    password_request,
    refresh_request,
    running_server,
    running_service,
)
from tests.service.conftest import StreamReader

Watch = Callable[..., StreamReader]
LIVE = 1.0
"""A revocation made through this server reaches its watchers within a second."""


def _revoke_new(service: RunningService, stub: pb_grpc.TokenServiceStub) -> tuple[str, int]:
    """Issue a token, revoke it; returns (jti, sequence)."""
    issued = service.issue(service.add_client(f"c{time.monotonic_ns()}"))
    response = stub.RevokeToken(pb.RevokeTokenRequest(token=issued.access_token), timeout=10)
    return jwt_segment(issued.access_token, 1)["jti"], response.sequence


def test_watch_from_zero_delivers_backlog_in_order_then_live(
    service: RunningService, watch: Watch
) -> None:
    stub = service.stub()
    backlog = [_revoke_new(service, stub) for _ in range(3)]
    reader = watch(stub, 0)
    events = reader.take(3, timeout=5)
    assert [(e.token_id, e.sequence) for e in events] == backlog
    assert all(e.expires_at > time.time() for e in events)

    live = _revoke_new(service, stub)
    event = reader.next(timeout=LIVE)
    assert (event.token_id, event.sequence) == live
    assert event.sequence > backlog[-1][1]


def test_watch_event_carries_the_token_expiry(service: RunningService, watch: Watch) -> None:
    stub = service.stub()
    reader = watch(stub, 0)
    issued = service.issue(service.add_client())
    stub.RevokeToken(pb.RevokeTokenRequest(token=issued.access_token), timeout=10)
    event = reader.next(timeout=LIVE)
    assert event.expires_at == jwt_segment(issued.access_token, 1)["exp"]


def test_watch_resume_after_sequence_misses_and_repeats_nothing(
    service: RunningService, watch: Watch
) -> None:
    stub = service.stub()
    first = watch(stub, 0)
    seen = [_revoke_new(service, stub) for _ in range(2)]
    assert [(e.token_id, e.sequence) for e in first.take(2, timeout=5)] == seen
    first.close()

    later = [_revoke_new(service, stub) for _ in range(2)]  # while disconnected
    resumed = watch(stub, seen[-1][1])
    assert [(e.token_id, e.sequence) for e in resumed.take(2, timeout=5)] == later
    live = _revoke_new(service, stub)
    assert (lambda e: (e.token_id, e.sequence))(resumed.next(timeout=LIVE)) == live
    assert resumed.nothing_within(0.3)  # nothing repeated


def test_watch_resume_at_latest_sequence_sends_only_new(
    service: RunningService, watch: Watch
) -> None:
    stub = service.stub()
    _, last = _revoke_new(service, stub)
    reader = watch(stub, last)
    assert reader.nothing_within(0.3)
    jti, sequence = _revoke_new(service, stub)
    event = reader.next(timeout=LIVE)
    assert (event.token_id, event.sequence) == (jti, sequence)


def test_watch_sees_revocation_written_by_another_store_handle(
    data_dir: Path, watch: Watch
) -> None:
    settings = ServiceSettings(sync_interval=0.1)
    url = sqlite_url(data_dir)
    with running_service(url, settings=settings) as service:
        reader = watch(service.stub(), 0)
        assert reader.nothing_within(0.2)
        other = open_store(url)
        try:
            now = math.floor(time.time())
            revocation = other.revoke("jti-from-elsewhere", now + 600, now)
        finally:
            other.close()
        event = reader.next(timeout=2.0)
        assert (event.token_id, event.sequence) == ("jti-from-elsewhere", revocation.sequence)
        assert event.expires_at == now + 600


def test_watch_sees_family_revocation_from_refresh_reuse_within_a_second(
    service: RunningService, watch: Watch
) -> None:
    """Reuse of a rotated refresh token revokes access tokens: watchers learn it live."""
    add_user(service, "alice")
    stub = service.stub()
    login = stub.IssueToken(password_request("alice"), timeout=10)
    refreshed = stub.IssueToken(refresh_request(login.refresh_token), timeout=10)
    reader = watch(stub, 0)
    assert reader.nothing_within(0.2)

    call_error(stub.IssueToken, refresh_request(login.refresh_token))  # reuse
    # One event for the family, however long: every access token names it (sid).
    family = {jwt_segment(t.access_token, 1)["sid"] for t in (login, refreshed)}
    event = reader.next(timeout=LIVE)
    assert (event.kind, {event.family_id}) == (pb.REVOCATION_KIND_FAMILY, family)
    assert reader.nothing_within(0.2)


@pytest.mark.slow
def test_watch_sees_family_revocation_from_revoking_refresh_token(
    service: RunningService, watch: Watch
) -> None:
    add_user(service, "alice")
    stub = service.stub()
    login = stub.IssueToken(password_request("alice"), timeout=10)
    reader = watch(stub, 0)
    stub.RevokeToken(pb.RevokeTokenRequest(token=login.refresh_token), timeout=10)
    event = reader.next(timeout=LIVE)
    assert event.kind == pb.REVOCATION_KIND_FAMILY
    assert event.family_id == jwt_segment(login.access_token, 1)["sid"]


def test_watch_negative_after_sequence_is_invalid_argument(service: RunningService) -> None:
    call = service.stub().WatchRevocations(
        pb.WatchRevocationsRequest(after_sequence=-1), timeout=10
    )
    reader = StreamReader(call)
    assert reader.end(timeout=5) == grpc.StatusCode.INVALID_ARGUMENT


def test_server_stop_ends_watch_with_ok(service: RunningService, watch: Watch) -> None:
    stub = service.stub()
    _revoke_new(service, stub)
    reader = watch(stub, 0)
    reader.next(timeout=5)
    assert reader.nothing_within(0.2)  # idle: the watcher waits for a notification
    service.loop.run(service.server.stop(grace=1))
    assert reader.end(timeout=3) == grpc.StatusCode.OK


def _bulk_revocations(data_dir: Path, count: int) -> None:
    """Write ``count`` active revocations straight into the SQLite file, in one commit."""
    open_store(sqlite_url(data_dir)).close()  # create and migrate the schema
    now = math.floor(time.time())
    with closing(sqlite3.connect(data_dir / DATABASE_FILENAME)) as db, db:
        db.executemany(
            "INSERT INTO revocations (jti, expires_at, revoked_at) VALUES (?, ?, ?)",
            [(f"bulk-{i:05d}", now + 600, now) for i in range(count)],
        )


def _served(data_dir: Path) -> ContextManager[ServeProcess]:
    """``bearer-grpc serve`` on ``data_dir``, in a child process."""
    return running_server(data_dir.parent, "--data-dir", str(data_dir), "--grace", "1")


@pytest.mark.process
def test_client_cancel_while_backlog_is_sent_does_not_crash_server(data_dir: Path) -> None:
    """A watcher that hangs up mid-backlog must not take the TokenService down.

    Runs the server in a child process: the failure mode is a segmentation fault.
    """
    _bulk_revocations(data_dir, 20000)
    with _served(data_dir) as child, child.channel() as channel:
        stub = pb_grpc.TokenServiceStub(channel)
        try:
            for _ in range(3):
                call = stub.WatchRevocations(watch_request(0), timeout=30)
                assert next(call).token_id == "bulk-00000"
                call.cancel()
            # The server finalises the abandoned streams on its own: keep it busy a moment.
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                stub.GetJwks(pb.GetJwksRequest(), timeout=5)
        except grpc.RpcError:
            with suppress(subprocess.TimeoutExpired):
                child.proc.wait(5)
        assert child.proc.poll() is None, f"server died:\n{child.output()}"


@pytest.mark.process
def test_server_stop_while_sending_backlog_ends_watch_with_ok(data_dir: Path) -> None:
    """SIGTERM while a watcher still drains a large backlog: the stream ends OK, exit 0.

    The watcher is suspended in ``yield`` (sending) when the server closes, not waiting
    for a notification; it must still notice the close rather than sleep until the grace
    period runs out and the call is cancelled.
    """
    _bulk_revocations(data_dir, 20000)
    with _served(data_dir) as child, child.channel() as channel:
        stub = pb_grpc.TokenServiceStub(channel)
        reader = StreamReader(stub.WatchRevocations(watch_request(0), timeout=30))
        assert reader.next(timeout=5).token_id == "bulk-00000"
        child.signal(signal.SIGTERM)
        code = reader.end(timeout=10)
        returncode = child.wait(10)
        assert returncode == 0, f"exit {returncode}:\n{child.output()}"
        assert code == grpc.StatusCode.OK
