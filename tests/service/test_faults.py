"""Faults and plumbing: a locked store, health, reflection, oversized messages."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from bearer_grpc.store._engine import DATABASE_FILENAME
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import RunningService, add_user, call_error, password_request, verify

BUSY_TIMEOUT = 5.0
"""open_store's default SQLite busy timeout; running_service offers no way to shorten it."""


@contextmanager
def _exclusive_lock(data_dir: Path) -> Iterator[None]:
    """Hold SQLite's write lock on the service's database from another connection."""
    with closing(sqlite3.connect(data_dir / DATABASE_FILENAME, isolation_level=None)) as db:
        db.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")


def _count(data_dir: Path, table: str) -> int:
    with closing(sqlite3.connect(data_dir / DATABASE_FILENAME)) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608


def _outcome(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    try:
        call()
    except grpc.RpcError as err:
        return err.code(), err.details()  # type: ignore[attr-defined]
    return grpc.StatusCode.OK, ""


@pytest.mark.slow
def test_locked_store_is_unavailable_then_recovers(service: RunningService, data_dir: Path) -> None:
    add_user(service, "alice")
    client = service.add_client()
    victim = service.issue(client)
    stub = service.stub()
    refresh_rows = _count(data_dir, "refresh_tokens")
    revocation_rows = _count(data_dir, "revocations")

    def login() -> object:
        return stub.IssueToken(password_request("alice"), timeout=BUSY_TIMEOUT + 10)

    def revoke() -> object:
        return stub.RevokeToken(
            pb.RevokeTokenRequest(token=victim.access_token), timeout=BUSY_TIMEOUT + 10
        )

    def client_credentials() -> object:
        return service.issue(client)

    with _exclusive_lock(data_dir), ThreadPoolExecutor(3) as pool:
        started = time.monotonic()
        # Every grant confirms its account under the store's write lock (so that none
        # commits for an account removed meanwhile): they wait, then fail cleanly.
        writes = [pool.submit(_outcome, call) for call in (login, revoke, client_credentials)]
        # Meanwhile the server keeps serving what needs no write.
        assert verify(stub, victim.access_token).active
        assert stub.GetJwks(pb.GetJwksRequest(), timeout=5).jwks_json
        outcomes = [w.result() for w in writes]
        assert [code for code, _ in outcomes] == [grpc.StatusCode.UNAVAILABLE] * 3
        assert time.monotonic() - started < BUSY_TIMEOUT + 5
    for _, details in outcomes:  # terse: no path, driver text or token
        assert str(data_dir) not in details and "sqlite" not in details.lower()
        assert victim.access_token not in details

    # Nothing half-written: no refresh token without its response, no revocation.
    assert _count(data_dir, "refresh_tokens") == refresh_rows
    assert _count(data_dir, "revocations") == revocation_rows
    assert verify(stub, victim.access_token).active

    # The same calls succeed once the lock is gone.
    assert len(stub.IssueToken(password_request("alice"), timeout=10).refresh_token) == 43
    assert _count(data_dir, "refresh_tokens") == refresh_rows + 1
    assert stub.RevokeToken(pb.RevokeTokenRequest(token=victim.access_token), timeout=10).sequence
    assert verify(stub, victim.access_token).reason == "TOKEN_REVOKED"


# -- health and reflection ----------------------------------------------------------------


def test_health_reports_serving(shared_service: RunningService) -> None:
    channel = grpc.insecure_channel(shared_service.target)
    shared_service.channels.append(channel)
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "bearer_grpc.v1.TokenService"):
        response = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING, name


def test_health_unknown_service_is_not_found(shared_service: RunningService) -> None:
    channel = grpc.insecure_channel(shared_service.target)
    shared_service.channels.append(channel)
    err = call_error(
        health_pb2_grpc.HealthStub(channel).Check,
        health_pb2.HealthCheckRequest(service="no.such.Service"),
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


def test_reflection_lists_the_token_service(shared_service: RunningService) -> None:
    channel = grpc.insecure_channel(shared_service.target)
    shared_service.channels.append(channel)
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = list(
        stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
    )
    assert len(responses) == 1
    names = {s.name for s in responses[0].list_services_response.service}
    assert {"bearer_grpc.v1.TokenService", "grpc.health.v1.Health"} <= names


def test_reflection_describes_token_service_file(shared_service: RunningService) -> None:
    channel = grpc.insecure_channel(shared_service.target)
    shared_service.channels.append(channel)
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    (response,) = stub.ServerReflectionInfo(
        iter(
            [
                reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="bearer_grpc.v1.TokenService"
                )
            ]
        ),
        timeout=5,
    )
    assert response.file_descriptor_response.file_descriptor_proto


def test_oversized_request_is_refused(shared_service: RunningService) -> None:
    err = call_error(
        shared_service.stub().VerifyToken,
        pb.VerifyTokenRequest(token="A" * (70 * 1024), audience="orders"),
    )
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert shared_service.stub().GetJwks(pb.GetJwksRequest(), timeout=5).issuer  # still serving


def test_unknown_method_is_unimplemented(shared_service: RunningService) -> None:
    channel = grpc.insecure_channel(shared_service.target)
    shared_service.channels.append(channel)
    method = channel.unary_unary(
        "/bearer_grpc.v1.TokenService/NoSuchMethod",
        request_serializer=lambda _: b"",
        response_deserializer=lambda data: data,
    )
    err = call_error(method, None)
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
