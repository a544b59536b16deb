"""The refresh_token grant: rotation, reuse detection, scopes, expiry, races."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import grpc
import pytest

from bearer_grpc.store import AccountKind
from bearer_grpc.store._engine import DATABASE_FILENAME
from bearer_grpc.testing import FrozenClock
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import (
    RunningService,
    add_user,
    call_error,
    jwt_segment,
    password_request,
    refresh_request,
    verify,
)


def _login(service: RunningService, **request: object) -> pb.IssueTokenResponse:
    add_user(service, "alice")
    response: pb.IssueTokenResponse = service.stub().IssueToken(
        password_request("alice", **request), timeout=10
    )
    return response


def _refresh(service: RunningService, token: str, **request: object) -> pb.IssueTokenResponse:
    response: pb.IssueTokenResponse = service.stub().IssueToken(
        refresh_request(token, **request), timeout=10
    )
    return response


def test_refresh_rotates_the_refresh_token(service: RunningService) -> None:
    login = _login(service)
    refreshed = _refresh(service, login.refresh_token)
    assert len(refreshed.refresh_token) == 43
    assert refreshed.refresh_token != login.refresh_token
    assert refreshed.access_token != login.access_token
    verified = verify(service.stub(), refreshed.access_token)
    assert verified.active and verified.subject == "alice"
    assert verified.client_id == "bearer-grpc"
    again = _refresh(service, refreshed.refresh_token)
    assert again.refresh_token not in (login.refresh_token, refreshed.refresh_token)


def test_refresh_reuse_revokes_family(service: RunningService) -> None:
    login = _login(service)
    second = _refresh(service, login.refresh_token)
    third = _refresh(service, second.refresh_token)
    stub = service.stub()

    reused = call_error(stub.IssueToken, refresh_request(login.refresh_token))
    assert reused.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]

    newest = call_error(stub.IssueToken, refresh_request(third.refresh_token))
    assert newest.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert newest.details() == reused.details()  # type: ignore[attr-defined]
    for issued in (login, second, third):
        result = verify(stub, issued.access_token)
        assert (result.active, result.reason) == (False, "TOKEN_REVOKED")


@pytest.mark.slow
def test_refresh_reuse_does_not_touch_other_families(service: RunningService) -> None:
    login = _login(service)
    other = service.stub().IssueToken(password_request("alice"), timeout=10)
    _refresh(service, login.refresh_token)
    call_error(service.stub().IssueToken, refresh_request(login.refresh_token))
    assert verify(service.stub(), other.access_token).active
    assert _refresh(service, other.refresh_token).access_token


def test_unknown_refresh_token_is_unauthenticated(service: RunningService) -> None:
    err = call_error(service.stub().IssueToken, refresh_request("A" * 43))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]


def test_empty_or_oversized_refresh_token_is_invalid_argument(service: RunningService) -> None:
    for value in ("", "A" * 513):
        err = call_error(service.stub().IssueToken, refresh_request(value))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


def test_refresh_with_narrower_scopes(service: RunningService) -> None:
    login = _login(service)
    narrowed = _refresh(service, login.refresh_token, scopes=["orders.read"])
    assert list(narrowed.scopes) == ["orders.read"]
    assert jwt_segment(narrowed.access_token, 1)["scope"] == "orders.read"
    # The family keeps its grant: the next refresh may ask for everything again.
    full = _refresh(service, narrowed.refresh_token)
    assert sorted(full.scopes) == ["orders.read", "orders.write"]


def test_refresh_with_wider_scopes_is_denied_and_does_not_consume(
    service: RunningService,
) -> None:
    login = _login(service)
    err = call_error(
        service.stub().IssueToken, refresh_request(login.refresh_token, scopes=["orders.admin"])
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]  # uniform
    refreshed = _refresh(service, login.refresh_token)
    assert refreshed.refresh_token
    assert verify(service.stub(), login.access_token).active  # no reuse was detected


def test_refresh_with_other_audience_is_denied_and_does_not_consume(
    service: RunningService,
) -> None:
    login = _login(service)  # audience "orders" (the user's first)
    err = call_error(
        service.stub().IssueToken, refresh_request(login.refresh_token, audience="billing")
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]  # uniform
    assert _refresh(service, login.refresh_token, audience="orders").refresh_token


def test_refresh_keeps_the_originally_granted_scopes(service: RunningService) -> None:
    """RFC 6749 §6: an omitted scope means the scope originally granted, not more."""
    login = _login(service, scopes=["orders.read"])
    assert list(login.scopes) == ["orders.read"]
    refreshed = _refresh(service, login.refresh_token)
    assert list(refreshed.scopes) == ["orders.read"]
    assert jwt_segment(refreshed.access_token, 1)["scope"] == "orders.read"


def test_refresh_cannot_widen_beyond_the_original_grant(service: RunningService) -> None:
    """RFC 6749 §6: a refresh request MUST NOT include a scope not originally granted."""
    login = _login(service, scopes=["orders.read"])
    err = call_error(
        service.stub().IssueToken,
        refresh_request(login.refresh_token, scopes=["orders.read", "orders.write"]),
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]  # uniform


def test_refresh_drops_scopes_the_user_lost(service: RunningService, data_dir: Path) -> None:
    login = _login(service)
    with closing(sqlite3.connect(data_dir / DATABASE_FILENAME)) as db, db:
        db.execute("UPDATE accounts SET scopes = 'orders.read' WHERE name = 'alice'")
    refreshed = _refresh(service, login.refresh_token)
    assert list(refreshed.scopes) == ["orders.read"]
    err = call_error(
        service.stub().IssueToken,
        refresh_request(refreshed.refresh_token, scopes=["orders.write"]),
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]  # uniform


def test_refresh_checks_the_users_current_audiences(
    service: RunningService, data_dir: Path
) -> None:
    """Like scopes, the audience of a refresh family must still be one the user may address."""
    login = _login(service)  # audience "orders"
    with closing(sqlite3.connect(data_dir / DATABASE_FILENAME)) as db, db:
        db.execute("UPDATE accounts SET audiences = 'billing' WHERE name = 'alice'")
    err = call_error(service.stub().IssueToken, refresh_request(login.refresh_token))
    assert err.code() in (  # type: ignore[attr-defined]
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    )


def test_expired_refresh_token_is_unauthenticated(
    clocked_service: RunningService, clock: FrozenClock
) -> None:
    login = _login(clocked_service)
    clock.advance(clocked_service.authority.settings.refresh_ttl)
    err = call_error(clocked_service.stub().IssueToken, refresh_request(login.refresh_token))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]


def test_refresh_token_valid_until_just_before_expiry(
    clocked_service: RunningService, clock: FrozenClock
) -> None:
    login = _login(clocked_service)
    clock.advance(clocked_service.authority.settings.refresh_ttl - 1)
    assert _refresh(clocked_service, login.refresh_token).access_token


def test_refresh_fails_after_user_removed(service: RunningService) -> None:
    login = _login(service)
    service.admin.remove("alice", AccountKind.USER)
    err = call_error(service.stub().IssueToken, refresh_request(login.refresh_token))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]


def test_concurrent_refreshes_of_one_token_exactly_one_succeeds(service: RunningService) -> None:
    login = _login(service)
    stubs = [service.stub() for _ in range(8)]

    def attempt(stub: object) -> grpc.StatusCode:
        try:
            stub.IssueToken(refresh_request(login.refresh_token), timeout=20)  # type: ignore[attr-defined]
        except grpc.RpcError as err:
            return err.code()  # type: ignore[attr-defined,no-any-return]
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(attempt, stubs))
    assert codes.count(grpc.StatusCode.OK) == 1, codes
    assert codes.count(grpc.StatusCode.UNAUTHENTICATED) == 7, codes
