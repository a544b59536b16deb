"""A stream refused midway (its token revoked between two responses): the refusal event
lands on the span of the call that was accepted first. Sync and aio."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bearer_grpc._server.tracing import REASON_ATTRIBUTE, SUBJECT_ATTRIBUTE
from bearer_grpc.testing import METHODS, TestIssuer, bearer, path
from tests.tracing.conftest import Servers, Steering
from tests.tracing.test_spans import (
    SUBJECT,
    UNAUTHENTICATED,
    _good,
    _refusal_events,
    _server_span,
)


def test_token_revoked_mid_stream_adds_the_event_where_it_happened(
    servers: Servers,
    steering: Steering,
    spans: InMemorySpanExporter,
    issuer: TestIssuer,
    flavour: str,
) -> None:
    """ServerStream's two responses, the token revoked between them: the span has the
    subject (accepted first) and then the refusal."""
    good = _good(issuer)
    server = steering[flavour, True]
    server.echo.between = lambda: server.verifier.local.revocations.add(
        good.token_id, good.expires_at
    )
    received = []
    with pytest.raises(grpc.RpcError) as caught:
        for response in servers[flavour, True].unary_stream(path(METHODS["unary_stream"]))(
            b"a", metadata=bearer(good), timeout=10
        ):
            received.append(response)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert len(received) == 1
    span = _server_span(spans, "unary_stream")
    assert span.attributes is not None
    assert span.attributes[SUBJECT_ATTRIBUTE] == SUBJECT
    assert span.attributes["rpc.grpc.status_code"] == UNAUTHENTICATED
    assert [e[REASON_ATTRIBUTE] for e in _refusal_events(span)] == ["TOKEN_REVOKED"]
