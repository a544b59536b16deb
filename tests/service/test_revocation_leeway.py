"""A revocation must outlive its token's leeway: verifiers accept a token until exp + leeway."""

from __future__ import annotations

from pathlib import Path

from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import sqlite_url
from bearer_grpc.testing import FrozenClock
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import running_service


def test_revoked_token_stays_refused_within_leeway_after_sync_and_housekeeping(
    data_dir: Path,
) -> None:
    clock = FrozenClock(1_800_000_000.0)
    settings = ServiceSettings(access_ttl=60, leeway=30)
    with running_service(sqlite_url(data_dir), settings=settings, clock=clock) as service:
        client = service.add_client()
        token = service.issue(client).access_token
        stub = service.stub()
        stub.RevokeToken(pb.RevokeTokenRequest(token=token))

        clock.now += 60 + 10  # past exp, still within the 30 s leeway
        service.authority.sync()
        service.authority.housekeeping()
        service.authority.sync()

        verified = stub.VerifyToken(pb.VerifyTokenRequest(token=token, audience="orders"))
        assert (verified.active, verified.reason) == (False, "TOKEN_REVOKED")

        clock.now += 30  # now beyond exp + leeway: expired, whatever its revocation
        service.authority.sync()
        verified = stub.VerifyToken(pb.VerifyTokenRequest(token=token, audience="orders"))
        assert verified.reason == "TOKEN_EXPIRED"
