"""State survives a restart, and replicas sharing one store see each other's changes.

Every test runs on SQLite (a data dir), and on PostgreSQL (a fresh schema) when
``BEARER_GRPC_TEST_PG_DSN`` is set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from bearer_grpc.service.admin import Admin
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import open_store, sqlite_url
from bearer_grpc.testing import FrozenClock
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import (
    add_user,
    call_error,
    jwt_segment,
    password_request,
    pg_dsn,
    pg_schema_url,
    refresh_request,
    running_service,
    verify,
    wait_until,
)

FAST_SYNC = ServiceSettings(sync_interval=0.1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store on each backend."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "bearer-grpc-data")
    else:
        with pg_schema_url(pg_dsn()) as url:
            yield url


def _jti(response: Any) -> str:
    return str(jwt_segment(response.access_token, 1)["jti"])


def test_token_issued_before_restart_verifies_after(store_url: str) -> None:
    with running_service(store_url) as first:
        issued = first.issue(first.add_client())
        kids = first.store.list_keys()
    with running_service(store_url) as second:
        result = verify(second.stub(), issued.access_token)
        assert result.active and result.token_id == _jti(issued)
        assert second.store.list_keys() == kids  # no new key was generated


def test_revoked_token_stays_revoked_after_restart(store_url: str) -> None:
    with running_service(store_url) as first:
        client = first.add_client()
        revoked, kept = first.issue(client), first.issue(client)
        first.stub().RevokeToken(pb.RevokeTokenRequest(token=revoked.access_token), timeout=10)
    with running_service(store_url) as second:
        stub = second.stub()
        assert verify(stub, revoked.access_token).reason == "TOKEN_REVOKED"
        assert verify(stub, kept.access_token).active


@pytest.mark.slow
def test_clients_and_users_survive_restart(store_url: str) -> None:
    with running_service(store_url) as first:
        client = first.add_client()
        add_user(first, "alice")
    with running_service(store_url) as second:
        assert second.issue(client).access_token  # the secret hashing key persisted too
        login = second.stub().IssueToken(password_request("alice"), timeout=10)
        assert verify(second.stub(), login.access_token).subject == "alice"


def test_refresh_token_works_after_restart_and_reuse_is_still_detected(store_url: str) -> None:
    with running_service(store_url) as first:
        add_user(first, "alice")
        login = first.stub().IssueToken(password_request("alice"), timeout=10)
        rotated = first.stub().IssueToken(refresh_request(login.refresh_token), timeout=10)
    with running_service(store_url) as second:
        stub = second.stub()
        refreshed = stub.IssueToken(refresh_request(rotated.refresh_token), timeout=10)
        assert verify(stub, refreshed.access_token).active
        reused = call_error(stub.IssueToken, refresh_request(login.refresh_token))
        assert reused.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        assert verify(stub, refreshed.access_token).reason == "TOKEN_REVOKED"


def test_revocation_survives_restart_within_leeway_after_exp(
    store_url: str, clock: FrozenClock
) -> None:
    """After a restart, a revoked token must not verify in the leeway window past exp."""
    with running_service(store_url, clock=clock) as first:
        issued = first.issue(first.add_client())
        first.stub().RevokeToken(pb.RevokeTokenRequest(token=issued.access_token), timeout=10)
    clock.now = jwt_segment(issued.access_token, 1)["exp"] + 1
    with running_service(store_url, clock=clock) as second:
        result = verify(second.stub(), issued.access_token)
        assert not result.active, "a revoked token verified as active after restart"


# -- replicas sharing one store ------------------------------------------------------------


def test_revocation_on_one_replica_reaches_the_other(store_url: str, watch: Any) -> None:
    with (
        running_service(store_url, settings=FAST_SYNC) as a,
        running_service(store_url, settings=FAST_SYNC) as b,
    ):
        issued = a.issue(a.add_client())
        assert verify(b.stub(), issued.access_token).active  # b trusts a's key
        reader = watch(b.stub(), 0)
        sequence = (
            a.stub()
            .RevokeToken(pb.RevokeTokenRequest(token=issued.access_token), timeout=10)
            .sequence
        )
        event = reader.next(timeout=2.0)
        assert (event.token_id, event.sequence) == (_jti(issued), sequence)
        assert verify(b.stub(), issued.access_token).reason == "TOKEN_REVOKED"


def test_replicas_share_keys_clients_and_refresh_families(store_url: str) -> None:
    with (
        running_service(store_url, settings=FAST_SYNC) as a,
        running_service(store_url, settings=FAST_SYNC) as b,
    ):
        assert [k.kid for k in a.store.list_keys()] == [k.kid for k in b.store.list_keys()]
        client = a.add_client()
        assert verify(a.stub(), b.issue(client).access_token).active
        add_user(a, "alice")
        login = a.stub().IssueToken(password_request("alice"), timeout=10)
        refreshed = b.stub().IssueToken(refresh_request(login.refresh_token), timeout=10)
        reused = call_error(a.stub().IssueToken, refresh_request(login.refresh_token))
        assert reused.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        wait_until(
            lambda: verify(b.stub(), refreshed.access_token).reason == "TOKEN_REVOKED",
            timeout=2,
        )


def test_key_rotated_through_the_store_reaches_every_replica(store_url: str) -> None:
    with (
        running_service(store_url, settings=FAST_SYNC) as a,
        running_service(store_url, settings=FAST_SYNC) as b,
    ):
        store = open_store(store_url)
        try:
            new = Admin(store).rotate_key(algorithm="ES256", delay=1, kek=None)
        finally:
            store.close()
        client = a.add_client()
        for replica in (a, b):
            wait_until(
                lambda r=replica: jwt_segment(r.issue(client).access_token, 0)["kid"] == new.kid,
                timeout=4,
            )
        assert verify(b.stub(), a.issue(client).access_token).active
