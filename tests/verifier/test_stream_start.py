"""What a ``WatchRevocations`` stream announces, and the resume rule (pure, no I/O)."""

from __future__ import annotations

import pytest

from bearer_grpc._verifier.revocations import (
    Resume,
    RevocationFeed,
    StreamStart,
    reached,
    resume,
    stream_start,
)
from bearer_grpc.core.clock import system_clock
from bearer_grpc.core.verification import LocalVerification
from bearer_grpc.core.wire import BACKLOG_END_KEY, CURSOR_KEY, EPOCH_KEY
from bearer_grpc.service import servicer


def test_metadata_keys_are_the_ones_the_service_sends() -> None:
    assert (EPOCH_KEY, CURSOR_KEY) == (servicer.EPOCH_KEY, servicer.CURSOR_KEY)


def test_stream_start_parses_the_three_headers() -> None:
    metadata = [
        ("content-type", "application/grpc"),
        (BACKLOG_END_KEY, "12"),
        (EPOCH_KEY, "e-1"),
        (CURSOR_KEY, "15"),
    ]
    assert stream_start(metadata) == StreamStart(epoch="e-1", cursor=15, backlog_end=12)


@pytest.mark.parametrize("metadata", [None, (), [("other", "1")]])
def test_absent_headers_are_none_never_zero(metadata: list[tuple[str, str]] | None) -> None:
    assert stream_start(metadata) == StreamStart(None, None, None)


@pytest.mark.parametrize("value", ["", "-1", "1.5", "x", "²", "1" * 21, " 3"])
def test_malformed_sequences_count_as_absent(value: str) -> None:
    start = stream_start([(BACKLOG_END_KEY, value), (CURSOR_KEY, value), (EPOCH_KEY, "")])
    assert start == StreamStart(None, None, None)


def test_first_of_repeated_headers_counts_and_bytes_are_ignored() -> None:
    metadata: list[tuple[str, str | bytes]] = [
        (EPOCH_KEY, b"bin"),
        (EPOCH_KEY, "a"),
        (EPOCH_KEY, "b"),
        (CURSOR_KEY, "1"),
        (CURSOR_KEY, "9"),
    ]
    assert stream_start(metadata) == StreamStart(epoch="a", cursor=1)


@pytest.mark.parametrize(
    ("epoch", "after", "start", "expected"),
    [
        # First contact, or a position of 0: nothing can be skipped.
        (None, 0, StreamStart("a", 0, 0), Resume.OK),
        ("a", 0, StreamStart("b", 0, 0), Resume.OK),
        (None, 0, StreamStart(), Resume.OK),
        # Same store, server at or past our position.
        ("a", 5, StreamStart("a", 5, 5), Resume.OK),
        ("a", 5, StreamStart("a", 9, 9), Resume.OK),
        (None, 5, StreamStart("a", 9, 9), Resume.OK),
        # Another store: reset, whatever its cursor.
        ("a", 5, StreamStart("b", 9, 9), Resume.RESET),
        ("a", 5, StreamStart("b", 1, 5), Resume.RESET),
        # The same store restored from an older backup (or a server behind us).
        ("a", 5, StreamStart("a", 4, 5), Resume.RESET),
        (None, 5, StreamStart(None, 0, 5), Resume.RESET),
        # An older server: no epoch, no cursor, decides nothing.
        ("a", 5, StreamStart(None, None, 5), Resume.OK),
        ("a", 5, StreamStart(), Resume.OK),
    ],
)
def test_resume_rule(epoch: str | None, after: int, start: StreamStart, expected: Resume) -> None:
    assert resume(epoch, after, start) is expected


def test_caught_up_only_from_an_announced_backlog_end() -> None:
    assert not reached(StreamStart(), 0)
    assert not reached(StreamStart("a", 3, None), 7)
    assert not reached(StreamStart("a", 3, 3), 2)
    assert reached(StreamStart("a", 3, 3), 3)
    assert reached(StreamStart(None, None, 0), 0)


def _local() -> LocalVerification:
    return LocalVerification(issuer=None, audience="orders", clock=system_clock)


def test_feed_reset_rewinds_the_sequence_keeps_the_jtis_and_remembers_the_epoch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    local = _local()
    feed = RevocationFeed(local, "tokens:443")
    assert feed.open(0, StreamStart("a", 0, 2)) is Resume.OK
    assert feed.epoch == "a" and not feed.advance(StreamStart("a", 0, 2))
    local.revocations.add("jti-1", 4_000_000_000, 1)
    local.revocations.add("jti-2", 4_000_000_000, 2)
    assert feed.advance(StreamStart("a", 0, 2))

    assert feed.open(2, StreamStart("b", 1, 2)) is Resume.RESET
    assert local.revocations.sequence == 0
    assert "jti-1" in local.revocations and "jti-2" in local.revocations
    assert feed.epoch == "b"
    assert feed.caught_up  # last known good stays
    assert "another store" in caplog.text
    # Then the new stream from 0 is followed.
    assert feed.open(0, StreamStart("b", 1, 1)) is Resume.OK


def test_feed_keeps_the_epoch_when_a_server_sends_none() -> None:
    feed = RevocationFeed(_local(), "tokens:443")
    feed.open(0, StreamStart("a", 0, 0))
    feed.open(0, StreamStart(None, None, 0))
    assert feed.epoch == "a"
