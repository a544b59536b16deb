"""Prometheus metrics of the TokenService, scraped from the real HTTP endpoint.

A real ``grpc.aio`` server with the servicer and its own ``ServiceMetrics`` is driven with
real calls; ``/metrics`` is served by ``ServiceMetrics.start_http`` on port 0 and read
with urllib, then parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bearer_grpc._verifier.revocations import watch_request
from bearer_grpc.service.admin import Admin, NewClient
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.metrics import ServiceMetrics, parse_listen
from bearer_grpc.service.revocations import RevocationNotifier
from bearer_grpc.service.servicer import TokenServiceServicer, add_to_server
from bearer_grpc.store import SqlStore, open_store, sqlite_url
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import LoopThread, client_request, verify, wait_until
from tests.service.conftest import StreamReader

CLIENT = "metrics-probe-client"


@dataclass
class Served:
    """A servicer on a real aio server, its metrics endpoint, and a client stub."""

    store: SqlStore
    metrics: ServiceMetrics
    stub: pb_grpc.TokenServiceStub
    metrics_url: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    store = open_store(sqlite_url(tmp_path / "data"))
    authority = TokenAuthority(store)
    authority.start()
    metrics = ServiceMetrics()
    loop = LoopThread()

    async def start() -> tuple[grpc.aio.Server, TokenServiceServicer, int]:
        server = grpc.aio.server()
        servicer = TokenServiceServicer(authority, RevocationNotifier(), metrics=metrics)
        add_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, servicer, port

    server, servicer, port = loop.run(start())
    metrics_port = metrics.start_http("127.0.0.1:0")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Served(
            store,
            servicer.metrics,
            pb_grpc.TokenServiceStub(channel),
            f"http://127.0.0.1:{metrics_port}/metrics",
        )
    finally:
        channel.close()
        metrics.stop_http()
        servicer.close()
        loop.run(server.stop(1))
        servicer.shutdown()
        loop.run(loop.loop.shutdown_default_executor())
        loop.close()
        store.close()


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (http on loopback)
        assert response.status == 200
        text: str = response.read().decode()
    return text


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


GRPC = {"interface": "grpc"}


def _value(text: str, name: str, **labels: str) -> float:
    return _samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def _client(served: Served) -> NewClient:
    return Admin(served.store).add_client(CLIENT, scopes=("orders.read",), audiences=("orders",))


def _issue(served: Served, client: NewClient) -> pb.IssueTokenResponse:
    response: pb.IssueTokenResponse = served.stub.IssueToken(
        client_request(client.client_id, client.client_secret), timeout=10
    )
    return response


def test_calls_are_counted_by_label_and_no_caller_data_is_exposed(served: Served) -> None:
    client = _client(served)
    tokens = [_issue(served, client).access_token for _ in range(2)]
    with pytest.raises(grpc.RpcError):
        served.stub.IssueToken(client_request(client.client_id, "not-the-secret"), timeout=10)
    for _ in range(3):
        assert verify(served.stub, tokens[0]).active
    assert verify(served.stub, "garbage").reason == "TOKEN_MALFORMED"
    assert verify(served.stub, tokens[0], audience="billing").reason == "TOKEN_INVALID"
    scoped = verify(served.stub, tokens[0], required_scopes=["orders.write"])
    assert scoped.reason == "INSUFFICIENT_SCOPE"
    with pytest.raises(grpc.RpcError) as missing:
        served.stub.VerifyToken(pb.VerifyTokenRequest(token=tokens[0]), timeout=10)
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    served.stub.RevokeToken(pb.RevokeTokenRequest(token=tokens[1]), timeout=10)
    assert verify(served.stub, tokens[1]).reason == "TOKEN_REVOKED"

    text = _scrape(served.metrics_url)
    issued = "bearer_grpc_tokens_issued_total"
    assert _value(text, issued, grant="client_credentials", outcome="issued", **GRPC) == 2
    assert _value(text, issued, grant="client_credentials", outcome="invalid_grant", **GRPC) == 1
    verifications = "bearer_grpc_verifications_total"
    assert _value(text, verifications, result="active", reason="none", **GRPC) == 3
    for reason in ("malformed", "invalid", "insufficient_scope", "revoked"):
        assert _value(text, verifications, result="inactive", reason=reason, **GRPC) == 1, reason
    assert _value(text, verifications, result="inactive", reason="expired", **GRPC) == 0
    assert _value(text, verifications, result="error", reason="invalid_request", **GRPC) == 1
    assert _value(text, "bearer_grpc_verify_duration_seconds_count", **GRPC) == 8
    assert _value(text, "bearer_grpc_revocations_accepted_total", target="token", **GRPC) == 1
    assert _value(text, "bearer_grpc_verify_cache_hits_total") >= 4  # tokens[0] after the 1st
    assert _value(text, "bearer_grpc_verify_cache_entries") == 1  # tokens[1]: never active
    assert 0 < _value(text, "bearer_grpc_verify_cache_hit_ratio") < 1

    jtis = [verify(served.stub, t).token_id for t in tokens]
    secrets = [*tokens, client.client_secret, client.client_id, CLIENT, *jtis]
    for token in tokens:  # each segment alone, too (header, claims, signature)
        secrets.extend(token.split("."))
    leaked = [s for s in secrets if s and s in text]
    assert not leaked


def test_revocation_lag_counts_live_deliveries_to_watchers(served: Served) -> None:
    client = _client(served)
    early = _issue(served, client).access_token
    served.stub.RevokeToken(pb.RevokeTokenRequest(token=early), timeout=10)  # backlog
    call = served.stub.WatchRevocations(watch_request(0), timeout=30)
    reader = StreamReader(call)
    try:
        assert reader.next(timeout=10).sequence == 1  # the backlog: not a live delivery
        wait_until(
            lambda: _value(_scrape(served.metrics_url), "bearer_grpc_watch_streams_open") == 1
        )
        late = _issue(served, client).access_token
        served.stub.RevokeToken(pb.RevokeTokenRequest(token=late), timeout=10)
        assert reader.next(timeout=10).sequence == 2
        text = _scrape(served.metrics_url)
        assert _value(text, "bearer_grpc_revocation_lag_seconds_count") == 1
        # revoked_at is whole seconds of the same clock: the lag is below 1 s plus the call
        assert _value(text, "bearer_grpc_revocation_lag_seconds_bucket", le="5.0") == 1
    finally:
        reader.close()
    wait_until(lambda: _value(_scrape(served.metrics_url), "bearer_grpc_watch_streams_open") == 0)


def test_store_errors_are_counted_by_fixed_operation(served: Served) -> None:
    served.metrics.store_error("sync")
    served.metrics.store_error("sync")
    served.metrics.store_error("a-name-nobody-declared")
    text = _scrape(served.metrics_url)
    assert _value(text, "bearer_grpc_store_errors_total", operation="sync") == 2
    assert _value(text, "bearer_grpc_store_errors_total", operation="other") == 1
    assert "a-name-nobody-declared" not in text


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = ServiceMetrics(), ServiceMetrics()  # the global registry would refuse
    first.store_error("sync")
    port = second.start_http(":0")
    try:
        text = _scrape(f"http://127.0.0.1:{port}/metrics")
        assert _value(text, "bearer_grpc_store_errors_total", operation="sync") == 0
        with pytest.raises(RuntimeError):
            second.start_http("127.0.0.1:0")
    finally:
        second.stop_http()
    with pytest.raises(urllib.error.URLError):
        _scrape(f"http://127.0.0.1:{port}/metrics")


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:9464", ("::1", 9464)),
        (":9464", ("127.0.0.1", 9464)),
        ("9464", ("127.0.0.1", 9464)),
    ],
)
def test_listen_forms(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["", "host:", "host:port", "127.0.0.1:65536", "[::1]"])
def test_bad_listen_is_refused(listen: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        ServiceMetrics().start_http(listen)
