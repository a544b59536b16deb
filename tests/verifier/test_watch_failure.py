"""A verifier answers only once a live ``WatchRevocations`` stream announced its backlog
and the verifier applied it: a failed stream (no initial metadata) is not "caught up".

The verifiers talk to a small proxy in front of a real TokenService: ``GetJwks`` passes
through, ``WatchRevocations`` fails with UNAVAILABLE until healed (or passes through with
some initial-metadata headers dropped, like an older server). Waits are deadlines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from bearer_grpc.core.errors import TokenRevoked, VerifierUnavailable
from bearer_grpc.core.wire import BACKLOG_END_KEY, CURSOR_KEY, EPOCH_KEY
from bearer_grpc.service.servicer import SERVICE_NAME
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import RunningService, wait_until
from tests.verifier.conftest import Flavour, Handle, issue, refused, revoke

STARTUP = 0.3


class WatchProxy:
    """A TokenService proxy whose ``WatchRevocations`` fails until :meth:`heal`.

    Args:
        upstream: The real TokenService.
        drop: Initial-metadata keys a healed stream does not pass on.
    """

    def __init__(self, upstream: str, drop: frozenset[str] = frozenset()) -> None:
        self._drop = drop
        self._failing = threading.Event()
        self._failing.set()
        self._channel = grpc.insecure_channel(upstream)
        self._stub = pb_grpc.TokenServiceStub(self._channel)
        self.watch_calls = 0
        handler = grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "GetJwks": grpc.unary_unary_rpc_method_handler(
                    self._get_jwks,
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

    def heal(self) -> None:
        """Let ``WatchRevocations`` through from now on."""
        self._failing.clear()

    def close(self) -> None:
        self._server.stop(0).wait(5)
        self._channel.close()

    def _get_jwks(self, request: pb.GetJwksRequest, context: Any) -> pb.GetJwksResponse:
        response: pb.GetJwksResponse = self._stub.GetJwks(request, timeout=5)
        return response

    def _watch(
        self, request: pb.WatchRevocationsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchRevocationsResponse]:
        self.watch_calls += 1
        if self._failing.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "WatchRevocations is down")
        call = self._stub.WatchRevocations(request, timeout=context.time_remaining())

        def cancel() -> None:
            call.cancel()

        context.add_callback(cancel)
        metadata = call.initial_metadata() or ()
        context.send_initial_metadata(
            tuple((item[0], item[1]) for item in metadata if item[0] not in self._drop)
        )
        yield from call


@pytest.fixture
def proxy_factory(service: RunningService) -> Iterator[Callable[..., WatchProxy]]:
    """Builds :class:`WatchProxy` instances in front of ``service`` (closed after)."""
    proxies: list[WatchProxy] = []

    def build(drop: frozenset[str] = frozenset()) -> WatchProxy:
        proxies.append(WatchProxy(service.target, drop))
        return proxies[-1]

    yield build
    for proxy in proxies:
        proxy.close()


def _answers(verifier: Handle, token: str) -> bool:
    try:
        verifier.verify(token)
    except VerifierUnavailable:
        return False
    return True


def test_failing_watch_fails_closed_after_startup_then_answers_once_caught_up(
    flavour: Flavour, service: RunningService, proxy_factory: Callable[..., WatchProxy]
) -> None:
    proxy = proxy_factory()
    token = issue(service)
    started = time.monotonic()
    verifier = flavour.from_token_service(proxy.target, startup_timeout=STARTUP)
    with pytest.raises(VerifierUnavailable):
        verifier.verify(token)
    assert time.monotonic() - started >= STARTUP  # it waited for the backlog first
    # The keys did arrive: it is the missing backlog that keeps it closed.
    wait_until(lambda: verifier.verifier.local.keys is not None)
    wait_until(lambda: proxy.watch_calls >= 2)  # retried, failed again
    with pytest.raises(VerifierUnavailable):
        verifier.verify(token)

    proxy.heal()
    wait_until(lambda: _answers(verifier, token), timeout=5.0)
    revoke(service, token)
    wait_until(lambda: refused(lambda: verifier.lookup(token), TokenRevoked), timeout=5.0)


def test_older_server_without_epoch_and_cursor_still_catches_up(
    flavour: Flavour, service: RunningService, proxy_factory: Callable[..., WatchProxy]
) -> None:
    proxy = proxy_factory(drop=frozenset({EPOCH_KEY, CURSOR_KEY}))
    proxy.heal()
    verifier = flavour.from_token_service(proxy.target, startup_timeout=5.0)
    token = issue(service)
    assert verifier.verify(token).token_id
    revoke(service, token)
    wait_until(lambda: refused(lambda: verifier.lookup(token), TokenRevoked), timeout=5.0)


def test_server_announcing_no_backlog_end_never_counts_as_caught_up(
    flavour: Flavour, service: RunningService, proxy_factory: Callable[..., WatchProxy]
) -> None:
    proxy = proxy_factory(drop=frozenset({BACKLOG_END_KEY, EPOCH_KEY, CURSOR_KEY}))
    proxy.heal()
    verifier = flavour.from_token_service(proxy.target, startup_timeout=STARTUP)
    with pytest.raises(VerifierUnavailable):
        verifier.verify(issue(service))
