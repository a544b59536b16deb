"""OpenTelemetry stays optional: bearer_grpc never imports it, and adds nothing to a span
that does not record."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from bearer_grpc._server import tracing
from bearer_grpc.core.errors import TokenExpired
from bearer_grpc.testing import TestIssuer
from tests.harness import clean_env

_IMPORTS = """
import sys
import bearer_grpc, bearer_grpc.aio
from bearer_grpc._server import tracing
from bearer_grpc.core.errors import TokenMissing
tracing.refused(TokenMissing())
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""


@pytest.mark.process
def test_bearer_grpc_never_imports_opentelemetry() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_hooks_leave_a_span_that_does_not_record_alone() -> None:
    span = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    with trace.use_span(span):
        tracing.refused(TokenExpired())  # nothing to record on, nothing raised


def test_hooks_record_on_the_current_recording_span() -> None:
    tracer = TracerProvider().get_tracer(__name__)
    issuer = TestIssuer()
    principal = issuer.verifier().verify(issuer.token(subject="alice"))
    with tracer.start_as_current_span("call") as span:
        tracing.refused(TokenExpired())
        tracing.accepted(principal)
    assert [event.name for event in span.events] == [tracing.REFUSED_EVENT]  # type: ignore[attr-defined]
    assert span.attributes[tracing.SUBJECT_ATTRIBUTE] == "alice"  # type: ignore[attr-defined]
