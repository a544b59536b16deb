"""A login flood is refused early and cannot starve issuing, revoking or the store sync."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import open_store, sqlite_url
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import running_service, wait_until

FLOOD = 12


@pytest.mark.slow
def test_password_flood_gets_resource_exhausted_while_the_rest_keeps_working(
    data_dir: Path,
) -> None:
    settings = ServiceSettings(password_workers=1, password_queue=2, sync_interval=0.1)
    url = sqlite_url(data_dir)
    with running_service(url, settings=settings) as service:
        client = service.add_client()
        token = service.issue(client).access_token
        stub = service.stub()
        start = threading.Barrier(FLOOD + 1)  # the flood, and this thread

        def login(i: int) -> grpc.StatusCode:
            request = pb.IssueTokenRequest(
                password=pb.PasswordGrant(username=f"nobody{i}", password="wrong-password")
            )
            start.wait(10)
            try:
                stub.IssueToken(request, timeout=30)
            except grpc.RpcError as err:
                return err.code()  # type: ignore[attr-defined, no-any-return]
            return grpc.StatusCode.OK

        with ThreadPoolExecutor(FLOOD) as pool:
            outcomes = pool.map(login, range(FLOOD))
            start.wait(10)  # the logins are being sent now
            # While logins are queued or refused: issuing works, and a revocation another
            # replica writes reaches VerifyToken through the sync loop.
            assert service.issue(client).access_token
            verified = stub.VerifyToken(pb.VerifyTokenRequest(token=token, audience="orders"))
            other = open_store(url)
            try:
                other.revoke(verified.token_id, verified.expires_at, verified.issued_at)
            finally:
                other.close()
            wait_until(
                lambda: (
                    stub.VerifyToken(pb.VerifyTokenRequest(token=token, audience="orders")).reason
                    == "TOKEN_REVOKED"
                ),
                timeout=5,
            )
            codes = list(outcomes)
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= FLOOD - 3
        assert set(codes) <= {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAUTHENTICATED}


def test_password_limits_are_validated() -> None:
    import pytest

    with pytest.raises(ValueError):
        ServiceSettings(password_workers=0)
    with pytest.raises(ValueError):
        ServiceSettings(password_workers=4, password_queue=2)
