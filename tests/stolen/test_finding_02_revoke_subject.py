"""Finding 2: removing a client or user left its access tokens valid, and the next owner of
the name shared its ``sub``.

Removal now writes the subject's "not before", pushed through WatchRevocations: every
token of the name issued at or before it is refused everywhere within a second, cached
ones and running streams included; a verifier that cannot read that event kind fails
closed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from bearer_grpc import Verifier
from bearer_grpc import aio as bearer_aio
from bearer_grpc.core.errors import TokenRevoked, VerifierUnavailable
from bearer_grpc.service.admin import Admin
from bearer_grpc.service.servicer import SERVICE_NAME
from bearer_grpc.store import AccountKind, open_store
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import (
    LoopThread,
    RunningService,
    add_user,
    password_request,
    refresh_request,
    verify,
    wait_until,
)
from tests.stolen._support import grpc_code

PROMISE = 1.0
"""Seconds within which a removal reaches every verifier."""


def _refused(call: Any) -> bool:
    try:
        call()
    except TokenRevoked:
        return True
    return False


def test_finding_2_clients_remove_revokes_its_tokens_everywhere_within_a_second(
    any_service: RunningService, backend_url: str
) -> None:
    service = any_service
    token = service.issue(service.add_client("orders-client")).access_token
    loop = LoopThread()
    sync = Verifier.from_token_service(service.target, audience="orders")
    aio = bearer_aio.Verifier.from_token_service(service.target, audience="orders")
    try:
        principal = sync.verify(token)
        loop.run(aio.verify(token))
        assert sync.lookup(token) is not None  # cached: the hit path must refuse it too

        cli_store = open_store(backend_url)  # the command goes to the store directly
        try:
            Admin(cli_store).remove("orders-client", AccountKind.CLIENT)
        finally:
            cli_store.close()
        removed = time.monotonic()

        wait_until(lambda: _refused(lambda: sync.lookup(token)), timeout=PROMISE)
        wait_until(lambda: _refused(lambda: loop.run(aio.verify(token))), timeout=PROMISE)
        wait_until(lambda: verify(service.stub(), token).reason == "TOKEN_REVOKED", timeout=1)
        assert time.monotonic() - removed < PROMISE + 0.5  # (wait_until's own deadline)
        assert isinstance(sync.recheck(principal), TokenRevoked)  # running streams end

        # A client created again under the name is a new principal: its tokens are good.
        again = service.issue(service.add_client("orders-client")).access_token
        assert sync.verify(again).subject == "orders-client"
        assert loop.run(aio.verify(again)).subject == "orders-client"
        assert verify(service.stub(), again).active
    finally:
        sync.close()
        loop.run(aio.aclose())
        loop.close()


def test_finding_2_users_remove_revokes_the_users_refresh_families(
    any_service: RunningService, backend_url: str
) -> None:
    stub = any_service.stub()
    add_user(any_service, "alice")
    login = stub.IssueToken(password_request("alice"), timeout=30)
    refreshed = stub.IssueToken(refresh_request(login.refresh_token), timeout=10)
    Admin(any_service.store).remove("alice", AccountKind.USER)
    wait_until(lambda: verify(stub, refreshed.access_token).reason == "TOKEN_REVOKED")
    again = refresh_request(refreshed.refresh_token)
    assert grpc_code(lambda: stub.IssueToken(again, timeout=10)) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.slow
def test_finding_2_users_revoke_logs_out_everywhere_and_the_account_stays(
    any_service: RunningService,
) -> None:
    stub = any_service.stub()
    add_user(any_service, "alice")
    login = stub.IssueToken(password_request("alice"), timeout=30)
    Admin(any_service.store).revoke_subject("alice")
    wait_until(lambda: verify(stub, login.access_token).reason == "TOKEN_REVOKED")
    refresh = refresh_request(login.refresh_token)
    assert grpc_code(lambda: stub.IssueToken(refresh, timeout=10)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    again = stub.IssueToken(password_request("alice"), timeout=30)  # a new login works
    assert verify(stub, again.access_token).active


def test_finding_2_a_watcher_that_does_not_declare_the_new_kinds_is_refused(
    service: RunningService,
) -> None:
    """An older verifier cannot apply subject or family events: refused before any event,
    it never counts as caught up, so it answers VERIFIER_UNAVAILABLE (fails closed)."""
    stub = service.stub()
    legacy = stub.WatchRevocations(pb.WatchRevocationsRequest(after_sequence=0), timeout=10)
    with pytest.raises(grpc.RpcError) as info:
        next(iter(legacy))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert "upgrade" in (info.value.details() or "")  # type: ignore[attr-defined]


class UnknownKindTokenService:
    """A TokenService that passes ``GetJwks`` through to a real one and streams one
    revocation event of a kind no release knows, when told to."""

    def __init__(self, upstream: str) -> None:
        self._channel = grpc.insecure_channel(upstream)
        self._stub = pb_grpc.TokenServiceStub(self._channel)
        self.send = threading.Event()
        self._stop = threading.Event()
        handler = grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "GetJwks": grpc.unary_unary_rpc_method_handler(
                    lambda request, context: self._stub.GetJwks(request, timeout=5),
                    request_deserializer=pb.GetJwksRequest.FromString,
                    response_serializer=pb.GetJwksResponse.SerializeToString,
                ),
                "WatchRevocations": grpc.unary_stream_rpc_method_handler(
                    self._watch,
                    request_deserializer=pb.WatchRevocationsRequest.FromString,
                    response_serializer=pb.WatchRevocationsResponse.SerializeToString,
                ),
            },
        )
        self._server = grpc.server(ThreadPoolExecutor(8), handlers=[handler])
        self.target = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def _watch(
        self, request: pb.WatchRevocationsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchRevocationsResponse]:
        upstream = self._stub.WatchRevocations(request, timeout=5)
        context.send_initial_metadata(tuple(upstream.initial_metadata() or ()))
        upstream.cancel()
        while not self.send.wait(0.05):
            if self._stop.is_set() or not context.is_active():
                return
        yield pb.WatchRevocationsResponse(sequence=1, kind=99, expires_at=2**40)  # type: ignore[arg-type]
        while context.is_active() and not self._stop.wait(0.05):
            pass

    def close(self) -> None:
        self._stop.set()
        self._server.stop(0).wait(5)
        self._channel.close()


def test_finding_2_a_verifier_meeting_an_unknown_event_kind_fails_closed(
    service: RunningService,
) -> None:
    token = service.issue(service.add_client()).access_token
    fake = UnknownKindTokenService(service.target)
    verifier = Verifier.from_token_service(fake.target, audience="orders")
    try:
        principal = verifier.verify(token)  # caught up: it answers
        fake.send.set()
        wait_until(lambda: verifier.local.revocations.failed, timeout=5)
        for check in (lambda: verifier.verify(token), lambda: verifier.lookup(token)):
            with pytest.raises(VerifierUnavailable):
                check()
        assert isinstance(verifier.recheck(principal), VerifierUnavailable)
    finally:
        verifier.close()
        fake.close()
