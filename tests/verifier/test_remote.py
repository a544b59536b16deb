"""``Verifier.remote`` (``VerifyToken`` on every cache miss) against a real TokenService."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bearer_grpc.core.errors import (
    AuthError,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenRevoked,
    VerifierUnavailable,
)
from bearer_grpc.store import sqlite_url
from bearer_grpc.testing import FrozenClock
from tests.harness import RunningService, jwt_segment, running_service, wait_until
from tests.verifier.conftest import (
    SETTINGS,
    Flavour,
    closed_port_target,
    issue,
    refused,
    restarted,
    revoke,
    stop,
)


def test_remote_verifies_and_caches_until_exp(
    flavour: Flavour, service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = flavour.remote(service.target)
    token = issue(service)
    claims = jwt_segment(token, 1)
    principal = verifier.verify(token)
    assert principal.token_id == claims["jti"]
    assert principal.subject == claims["sub"]
    assert principal.scopes == frozenset(claims["scope"].split())
    assert principal.expires_at == claims["exp"]
    assert principal.claims["exp"] == claims["exp"]
    assert type(principal.claims["exp"]) is int
    assert principal.claims["client_id"] == claims["client_id"]
    assert verifier.lookup(token) == principal


def test_remote_wrong_audience_is_token_invalid(flavour: Flavour, service: RunningService) -> None:
    verifier = flavour.remote(service.target, audience="billing")
    with pytest.raises(TokenInvalid):
        verifier.verify(issue(service))


def test_remote_malformed_token_is_token_malformed(
    flavour: Flavour, service: RunningService
) -> None:
    verifier = flavour.remote(service.target)
    with pytest.raises(TokenMalformed):
        verifier.verify("not-a-jws")


@pytest.fixture
def clock() -> FrozenClock:
    """The TokenService's clock, moved by the test."""
    return FrozenClock(float(int(time.time())))


@pytest.fixture
def clocked(tmp_path: Path, clock: FrozenClock) -> Iterator[RunningService]:
    """A TokenService whose time is ``clock``."""
    with running_service(sqlite_url(tmp_path / "clocked"), settings=SETTINGS, clock=clock) as s:
        yield s


def test_remote_expired_is_token_expired(
    flavour: Flavour, clocked: RunningService, clock: FrozenClock
) -> None:
    verifier = flavour.remote(clocked.target)
    token = issue(clocked)
    clock.advance(3600)
    with pytest.raises(TokenExpired):
        verifier.verify(token)


def test_remote_revoked_is_token_revoked(flavour: Flavour, service: RunningService) -> None:
    verifier = flavour.remote(service.target)
    token = issue(service)
    revoke(service, token)
    error: AuthError
    with pytest.raises(TokenRevoked) as info:
        verifier.verify(token)
    error = info.value
    assert error.reason == "TOKEN_REVOKED"


def test_revocation_reaches_remote_verifier_cache_within_1s(
    flavour: Flavour, service: RunningService
) -> None:
    verifier = flavour.remote(service.target)
    token = issue(service)
    verifier.verify(token)
    revoke(service, token)
    wait_until(lambda: refused(lambda: verifier.lookup(token), TokenRevoked), timeout=1.0)


def test_remote_service_down_fails_closed_then_recovers(
    flavour: Flavour, service: RunningService, store_url: str
) -> None:
    verifier = flavour.remote(service.target)
    seen, unseen = issue(service), issue(service)
    verifier.verify(seen)
    stop(service)

    with pytest.raises(VerifierUnavailable):
        verifier.verify(unseen)
    assert verifier.lookup(seen) is not None  # a cached answer still stands

    with restarted(store_url, service.target):
        wait_until(lambda: not refused(lambda: verifier.verify(unseen), VerifierUnavailable))
        assert verifier.lookup(unseen) is not None


def test_remote_nothing_listening_is_unavailable(flavour: Flavour, service: RunningService) -> None:
    verifier = flavour.remote(closed_port_target(), timeout=0.5)
    with pytest.raises(VerifierUnavailable):
        verifier.verify(issue(service))
