"""Server spans of calls through bearer_grpc, as OpenTelemetry's gRPC instrumentation
records them: refusals with their code and reason, the subject only on request, and
never any token material.

Every test runs sync and aio, each of the four RPC kinds.
"""

from __future__ import annotations

import contextlib

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from bearer_grpc._server.tracing import REASON_ATTRIBUTE, REFUSED_EVENT, SUBJECT_ATTRIBUTE
from bearer_grpc.core.tokens import IssuedToken
from bearer_grpc.testing import KINDS, METHODS, Kind, TestIssuer, bearer, call, path
from tests.harness import ECHO_AUDIENCE, ECHO_SCOPE, wait_until
from tests.tracing.conftest import Servers

SUBJECT = "svc-orders"
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED.value[0]
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED.value[0]

pytestmark = pytest.mark.parametrize("kind", KINDS)


def _good(issuer: TestIssuer) -> IssuedToken:
    return issuer.issue(subject=SUBJECT, scopes=[ECHO_SCOPE], audience=ECHO_AUDIENCE)


def _server_span(spans: InMemorySpanExporter, kind: Kind) -> ReadableSpan:
    """The call's server span, once it ended (the server may end it just after the
    client has read the status)."""

    def server_spans() -> list[ReadableSpan]:
        return [
            span
            for span in spans.get_finished_spans()
            if span.kind is SpanKind.SERVER and span.name == path(METHODS[kind])
        ]

    found = wait_until(server_spans, timeout=5.0)
    assert len(found) == 1, found
    return found[0]


def _refused(channel: grpc.Channel, kind: Kind, token: str | None) -> grpc.StatusCode:
    metadata = bearer(token) if token is not None else None
    with pytest.raises(grpc.RpcError) as caught:
        call(channel, kind, metadata=metadata)
    code: grpc.StatusCode = caught.value.code()
    return code


def _refusal_events(span: ReadableSpan) -> list[dict[str, object]]:
    return [dict(event.attributes or {}) for event in span.events if event.name == REFUSED_EVENT]


def test_missing_token_span_is_unauthenticated_with_reason(
    servers: Servers, spans: InMemorySpanExporter, flavour: str, kind: Kind
) -> None:
    code = _refused(servers[flavour, False], kind, None)
    assert code is grpc.StatusCode.UNAUTHENTICATED
    span = _server_span(spans, kind)
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == UNAUTHENTICATED
    assert _refusal_events(span) == [
        {REASON_ATTRIBUTE: "TOKEN_MISSING", "rpc.grpc.status_code": UNAUTHENTICATED}
    ]


def test_expired_token_span_is_unauthenticated_with_reason(
    servers: Servers, spans: InMemorySpanExporter, issuer: TestIssuer, flavour: str, kind: Kind
) -> None:
    """Refused in the handler (a cache miss verified there), not in intercept_service."""
    token = issuer.token(
        subject=SUBJECT, scopes=[ECHO_SCOPE], audience=ECHO_AUDIENCE, lifetime=60, age=3600
    )
    assert _refused(servers[flavour, True], kind, token) is grpc.StatusCode.UNAUTHENTICATED
    span = _server_span(spans, kind)
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == UNAUTHENTICATED
    assert [e[REASON_ATTRIBUTE] for e in _refusal_events(span)] == ["TOKEN_EXPIRED"]
    assert SUBJECT_ATTRIBUTE not in span.attributes  # refused: no caller to name


def test_insufficient_scope_span_is_permission_denied_with_reason(
    servers: Servers, spans: InMemorySpanExporter, issuer: TestIssuer, flavour: str, kind: Kind
) -> None:
    token = issuer.token(subject=SUBJECT, scopes=["other"], audience=ECHO_AUDIENCE)
    assert _refused(servers[flavour, False], kind, token) is grpc.StatusCode.PERMISSION_DENIED
    span = _server_span(spans, kind)
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == PERMISSION_DENIED
    assert _refusal_events(span) == [
        {REASON_ATTRIBUTE: "INSUFFICIENT_SCOPE", "rpc.grpc.status_code": PERMISSION_DENIED}
    ]


def test_accepted_span_has_no_subject_by_default(
    servers: Servers, spans: InMemorySpanExporter, issuer: TestIssuer, flavour: str, kind: Kind
) -> None:
    call(servers[flavour, False], kind, metadata=bearer(_good(issuer)))
    span = _server_span(spans, kind)
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == 0
    assert SUBJECT_ATTRIBUTE not in span.attributes
    assert not span.events


def test_accepted_span_carries_the_subject_when_opted_in(
    servers: Servers, spans: InMemorySpanExporter, issuer: TestIssuer, flavour: str, kind: Kind
) -> None:
    """Both the first call (verified in the handler) and the next (a cache hit)."""
    metadata = bearer(_good(issuer))
    for _ in range(2):
        spans.clear()
        call(servers[flavour, True], kind, metadata=metadata)
        span = _server_span(spans, kind)
        assert span.attributes is not None
        assert span.attributes[SUBJECT_ATTRIBUTE] == SUBJECT
        assert not span.events


def test_no_span_holds_token_material(
    servers: Servers, spans: InMemorySpanExporter, issuer: TestIssuer, flavour: str, kind: Kind
) -> None:
    """Accepted, refused for scope, expired, forged and garbled tokens, traced with the
    subject on: no span (server or client) names the token, a part of it, or its id."""
    good = _good(issuer)
    tokens = [
        good,
        issuer.issue(subject=SUBJECT, scopes=["other"], audience=ECHO_AUDIENCE),
        issuer.issue(subject=SUBJECT, scopes=[ECHO_SCOPE], audience=ECHO_AUDIENCE, age=7200),
        issuer.impostor().issue(subject=SUBJECT, scopes=[ECHO_SCOPE], audience=ECHO_AUDIENCE),
    ]
    channel = servers[flavour, True]
    for issued in tokens:
        with contextlib.suppress(grpc.RpcError):
            call(channel, kind, metadata=bearer(issued))
    garbled = good.token[:-6] + "AAAAAA"
    _refused(channel, kind, garbled)
    secrets = {garbled, good.token[:-6]}
    for issued in tokens:
        secrets |= {issued.token, issued.token_id, *issued.token.split(".")}
    calls = len(tokens) + 1  # one server span and one client span each
    finished = wait_until(
        lambda: spans.get_finished_spans() if len(spans.get_finished_spans()) >= 2 * calls else None
    )
    assert len(finished) == 2 * calls
    for span in finished:
        texts = [span.name, span.status.description or ""]
        texts += [str(value) for value in (span.attributes or {}).values()]
        for event in span.events:
            texts.append(event.name)
            texts += [str(value) for value in (event.attributes or {}).values()]
        leaked = [secret for secret in secrets for text in texts if secret in text]
        assert not leaked, (span.name, span.kind)
