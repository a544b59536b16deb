"""Findings 5, 6 and 7: bounded watch streams, refresh reuse detected first, families
revoked as one."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from bearer_grpc._verifier.revocations import watch_request
from bearer_grpc.core.verification import RevocationKind
from bearer_grpc.service.server import ServeConfig
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import sqlite_url
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import (
    RunningService,
    add_user,
    jwt_segment,
    password_request,
    refresh_request,
    running_service,
    verify,
    wait_until,
)
from tests.stolen._support import TimedWatch, grpc_code


def admitted(watch: TimedWatch) -> TimedWatch:
    """``watch``, once the server has taken it (fails the test if it was refused)."""
    assert watch.admitted(10), f"stream refused: {watch.code}"
    return watch


# -- finding 5: WatchRevocations is bounded --------------------------------------------------


def test_finding_5_watch_streams_are_bounded_per_peer_and_in_total(tmp_path: Path) -> None:
    settings = ServiceSettings(watch_streams=5, watch_streams_per_peer=3, sync_interval=0.5)
    config = ServeConfig(listen="[::]:0", grace=1)
    with running_service(
        sqlite_url(tmp_path / "data"), settings=settings, config=config
    ) as service:
        port = service.target.rsplit(":", 1)[1]
        over_v4 = service.stub()
        over_v6 = grpc.insecure_channel(f"[::1]:{port}")
        service.channels.append(over_v6)
        v6 = pb_grpc.TokenServiceStub(over_v6)
        # Each stream is opened once the one before is in, so which one is refused is known.
        mine = [admitted(TimedWatch(over_v4)) for _ in range(3)]
        extra = TimedWatch(over_v4)
        assert extra.ended(10) == grpc.StatusCode.RESOURCE_EXHAUSTED  # this peer's share
        others = [admitted(TimedWatch(v6)) for _ in range(2)]
        full = TimedWatch(v6)
        assert full.ended(10) == grpc.StatusCode.RESOURCE_EXHAUSTED  # all streams taken
        # Streams that were admitted work, and a closed one frees its slot.
        token = service.issue(service.add_client()).access_token
        sequence = service.stub().RevokeToken(pb.RevokeTokenRequest(token=token)).sequence
        for watch in mine + others:
            watch.arrival(sequence, timeout=5)
        mine[0].close()
        gauge = service.server.metrics.registry.get_sample_value
        wait_until(lambda: gauge("bearer_grpc_watch_streams_open") == 4)  # the server let go
        again = admitted(TimedWatch(over_v4))
        again.arrival(sequence, timeout=5)
        for watch in [*mine[1:], *others, again]:
            watch.close()


def test_finding_5_a_reader_that_stalls_does_not_delay_the_others(
    service: RunningService,
) -> None:
    """Each stream pulls from the one log at its own pace: a stalled one holds nothing."""
    stub = service.stub()
    stalled = stub.WatchRevocations(watch_request(0), timeout=60)  # opened, never read
    readers = [TimedWatch(service.stub()) for _ in range(20)]
    client = service.add_client()
    try:
        worst = 0.0
        for _ in range(20):
            token = service.issue(client).access_token
            sent = time.monotonic()
            sequence = stub.RevokeToken(pb.RevokeTokenRequest(token=token), timeout=10).sequence
            worst = max(worst, *(r.arrival(sequence, timeout=5) - sent for r in readers))
        assert worst < 1.0, f"worst lag {worst:.3f} s"
    finally:
        stalled.cancel()
        for reader in readers:
            reader.close()


# -- finding 6: refresh reuse is detected first, and answered uniformly ----------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "narrowing",
    [{"scopes": ["orders.admin"]}, {"audience": "billing"}, {"scopes": ["x y"]}],
    ids=["scope", "audience", "malformed_scope"],
)
def test_finding_6_replayed_refresh_token_outside_its_grant_is_still_reuse(
    any_service: RunningService, narrowing: dict[str, object]
) -> None:
    stub = any_service.stub()
    add_user(any_service, "alice")
    login = stub.IssueToken(password_request("alice"), timeout=30)
    rotated = stub.IssueToken(refresh_request(login.refresh_token), timeout=10)

    replay = refresh_request(login.refresh_token, **narrowing)  # a thief's replay
    code = grpc_code(lambda: stub.IssueToken(replay, timeout=10))
    if narrowing.get("scopes") == ["x y"]:
        assert code == grpc.StatusCode.INVALID_ARGUMENT  # malformed: refused before anything
        return
    assert code == grpc.StatusCode.UNAUTHENTICATED
    # Reuse was detected: the family is revoked, the current refresh token with it.
    assert verify(stub, rotated.access_token).reason == "TOKEN_REVOKED"
    current = refresh_request(rotated.refresh_token)
    assert grpc_code(lambda: stub.IssueToken(current, timeout=10)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def test_finding_6_refresh_answers_say_nothing_about_the_token(
    any_service: RunningService,
) -> None:
    """Unknown, used and current tokens asked for a scope outside the grant: one answer."""
    stub = any_service.stub()
    add_user(any_service, "alice")
    login = stub.IssueToken(password_request("alice"), timeout=30)
    rotated = stub.IssueToken(refresh_request(login.refresh_token), timeout=10)
    answers = set()
    for value in ("x" * 43, rotated.refresh_token, login.refresh_token):
        try:
            stub.IssueToken(refresh_request(value, scopes=["orders.admin"]), timeout=10)
        except grpc.RpcError as err:
            answers.add((err.code(), err.details()))  # type: ignore[attr-defined]
    assert answers == {(grpc.StatusCode.UNAUTHENTICATED, "invalid credentials")}


# -- finding 7: a family is revoked as one row and one event ---------------------------------


@pytest.mark.slow
def test_finding_7_a_long_family_is_revoked_with_one_row_and_one_event(
    any_service: RunningService,
) -> None:
    stub = any_service.stub()
    add_user(any_service, "alice")
    login = stub.IssueToken(password_request("alice"), timeout=30)
    issued = [login]
    for _ in range(60):  # a family rotated many times
        issued.append(stub.IssueToken(refresh_request(issued[-1].refresh_token), timeout=10))
    families = {jwt_segment(i.access_token, 1)["sid"] for i in issued}
    assert len(families) == 1  # every access token names its family
    before = any_service.authority.revocations.cursor
    watch = TimedWatch(stub, after_sequence=before)
    try:
        stub.RevokeToken(pb.RevokeTokenRequest(token=issued[-1].refresh_token), timeout=10)
        rows = any_service.store.revocations_after(before)
        assert [(r.kind, r.target) for r in rows] == [(RevocationKind.FAMILY, *families)]
        watch.arrival(rows[0].sequence, timeout=5)
        assert watch.ended(0.3) is None and len(watch.events) == 1  # one event
        for response in issued:
            assert verify(stub, response.access_token).reason == "TOKEN_REVOKED"
    finally:
        watch.close()
