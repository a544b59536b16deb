"""The pure rules of the client side: renewal timetable, backoff, metadata, retry test."""

from __future__ import annotations

import math

import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

import bearer_grpc
from bearer_grpc._client.common import issued_token
from bearer_grpc._client.metadata import is_stale_token, with_bearer
from bearer_grpc.core.renewal import (
    Failed,
    Fetch,
    Ready,
    Renewal,
    backoff_delay,
    check_renew_before,
    renew_at,
)
from bearer_grpc.v1 import token_service_pb2 as pb

BACKOFF = bearer_grpc.Backoff(initial=1.0, maximum=8.0, multiplier=2.0)


def test_renew_at_fraction_of_lifetime() -> None:
    assert renew_at(100.0, 60.0, 0.2) == pytest.approx(148.0)
    assert renew_at(100.0, 900.0, 0.5) == pytest.approx(550.0)


def test_renew_at_seconds_before_expiry() -> None:
    assert renew_at(100.0, 900.0, 60) == pytest.approx(940.0)


def test_renew_at_never_before_half_the_lifetime() -> None:
    assert renew_at(100.0, 60.0, 300) == pytest.approx(130.0)


@pytest.mark.parametrize("bad", [0, -1, math.inf, math.nan])
def test_renew_before_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError):
        check_renew_before(bad)


def test_backoff_grows_and_is_capped() -> None:
    bounds = [backoff_delay(BACKOFF, n, 0.999999) for n in range(1, 7)]
    assert bounds == pytest.approx([1, 2, 4, 8, 8, 8], rel=1e-5)
    assert backoff_delay(BACKOFF, 10_000, 0.5) <= 8.0


@pytest.mark.parametrize("failures", [1, 2, 3, 50])
def test_backoff_jitter_stays_between_half_and_all_of_the_bound(failures: int) -> None:
    bound = min(8.0, 2.0 ** (failures - 1))
    assert backoff_delay(BACKOFF, failures, 0.0) == pytest.approx(bound / 2)
    assert bound / 2 <= backoff_delay(BACKOFF, failures, 0.7) < bound


def test_fresh_source_fetches() -> None:
    renewal = Renewal(BACKOFF)
    assert renewal.decide(0.0) == Fetch()
    assert renewal.due(0.0)
    assert renewal.seconds_until_due(0.0) == 0.0


def test_token_is_served_then_renewed_then_refetched() -> None:
    renewal = Renewal(BACKOFF)
    renewal.succeeded("tok", requested_at=100.0, lifetime=60)
    assert renewal.decide(120.0) == Ready("tok", renew=False)
    assert not renewal.due(120.0)
    assert renewal.seconds_until_due(120.0) == pytest.approx(28.0)
    assert renewal.decide(148.0) == Ready("tok", renew=True)  # served, and renewal nudged
    assert renewal.due(148.0)
    assert renewal.decide(160.0) == Fetch()  # expired: callers wait for a new one


def test_failure_without_token_fails_fast_until_the_delay_ends() -> None:
    renewal = Renewal(BACKOFF)
    error = ConnectionError("down")
    delay = renewal.failed(error, now=10.0, rand=0.0)
    assert delay == pytest.approx(0.5)
    assert renewal.decide(10.2) == Failed(error)
    assert not renewal.due(10.2)
    assert renewal.seconds_until_due(10.2) == pytest.approx(0.3)
    assert renewal.decide(10.5) == Fetch()
    assert renewal.failed(error, now=10.5, rand=0.0) == pytest.approx(1.0)  # grows


def test_failed_renewal_keeps_serving_the_valid_token() -> None:
    renewal = Renewal(BACKOFF)
    renewal.succeeded("tok", requested_at=100.0, lifetime=60)
    renewal.failed(ConnectionError("down"), now=150.0, rand=0.0)
    assert renewal.decide(150.1) == Ready("tok", renew=False)  # backing off: no nudge
    assert renewal.decide(150.6) == Ready("tok", renew=True)
    renewal.succeeded("new", requested_at=151.0, lifetime=60)
    assert renewal.failures == 0
    assert renewal.decide(152.0) == Ready("new", renew=False)


def test_invalidate_only_the_current_token() -> None:
    renewal = Renewal(BACKOFF)
    renewal.succeeded("new", requested_at=0.0, lifetime=60)
    assert not renewal.invalidate("old")
    assert renewal.decide(1.0) == Ready("new", renew=False)
    assert renewal.invalidate("new")
    assert renewal.decide(1.0) == Fetch()


def test_repr_of_steps_and_tokens_hides_the_token() -> None:
    renewal = Renewal(BACKOFF)
    cached = renewal.succeeded("secret-token", requested_at=0.0, lifetime=60)
    assert "secret-token" not in repr(cached)
    assert "secret-token" not in repr(renewal.decide(1.0))


def test_with_bearer_replaces_only_authorization() -> None:
    metadata = [
        ("a", "1"),
        ("authorization", "Bearer x"),
        ("b-bin", b"\x00"),
        ("AUTHORIZATION", "y"),
    ]
    assert with_bearer(metadata, "tok") == (
        ("a", "1"),
        ("b-bin", b"\x00"),
        ("authorization", "Bearer tok"),
    )
    assert with_bearer(None, "tok") == (("authorization", "Bearer tok"),)


def _status(reason: str, domain: str = "bearer-grpc") -> status_pb2.Status:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=domain))
    return status_pb2.Status(code=16, message="no", details=[detail])


def test_stale_token_reasons() -> None:
    assert is_stale_token(_status("TOKEN_EXPIRED"))
    assert is_stale_token(_status("TOKEN_REVOKED"))
    assert not is_stale_token(_status("TOKEN_INVALID"))
    assert not is_stale_token(_status("TOKEN_MISSING"))
    assert not is_stale_token(_status("TOKEN_EXPIRED", domain="example.com"))
    assert not is_stale_token(status_pb2.Status(code=16, message="no"))
    assert not is_stale_token(None)


@pytest.mark.parametrize(
    "response",
    [
        pb.IssueTokenResponse(access_token="a.b.c", token_type="Bearer", expires_in=0),
        pb.IssueTokenResponse(access_token="a.b.c", token_type="MAC", expires_in=60),
        pb.IssueTokenResponse(access_token="a b", token_type="Bearer", expires_in=60),
        pb.IssueTokenResponse(access_token="", token_type="Bearer", expires_in=60),
    ],
)
def test_unusable_answers_are_refused(response: pb.IssueTokenResponse) -> None:
    with pytest.raises(Exception, match="no usable bearer token"):
        issued_token(response)


def test_usable_answer() -> None:
    answer = pb.IssueTokenResponse(access_token="a.b.c", token_type="Bearer", expires_in=60)
    assert issued_token(answer) == ("a.b.c", 60)
