"""Fixtures: Echo servers traced by OpenTelemetry's gRPC instrumentation, in front of ours.

Four servers for the whole folder: sync and aio, each with ``trace_subject`` off (the
default) and on. Each has ``opentelemetry-instrumentation-grpc``'s server interceptor
first (it opens the server span) and bearer_grpc's second. Spans go to the SDK's
``InMemorySpanExporter`` through a ``TracerProvider`` of these tests (the process-wide
provider is left alone), emptied before each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from opentelemetry.instrumentation.grpc import (
    aio_server_interceptor,
    client_interceptor,
    grpcext,
    server_interceptor,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc.testing import Echo, LoopThread, TestIssuer, serve, serve_aio
from tests.harness import ECHO_AUDIENCE, ECHO_METHODS, echo_policy

Servers = dict[tuple[str, bool], grpc.Channel]
"""Channels to the traced servers, by (flavour, trace_subject)."""


@dataclass
class Traced:
    """What a test may steer on one traced server: its Echo and its verifier."""

    echo: Echo
    verifier: Any


Steering = dict[tuple[str, bool], Traced]


@pytest.fixture(scope="session")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="session")
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture(scope="session")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="session")
def traced(issuer: TestIssuer, provider: TracerProvider) -> Iterator[tuple[Servers, Steering]]:
    """The four traced servers: channels (which trace their client calls too: their
    spans are scanned as well), and what tests steer."""
    with LoopThread() as loop, ExitStack() as stack:
        channels: Servers = {}
        steering: Steering = {}
        for trace_subject in (False, True):
            verifier: Any = issuer.verifier(audience=ECHO_AUDIENCE)
            ours: Any = bearer_grpc.BearerServerInterceptor(
                verifier, echo_policy(), trace_subject=trace_subject
            )
            echo = Echo(ECHO_METHODS)
            target = stack.enter_context(
                serve(
                    [echo.handler()],
                    interceptors=[server_interceptor(tracer_provider=provider), ours],
                )
            )
            channels["sync", trace_subject] = _traced_channel(stack, target, provider)
            steering["sync", trace_subject] = Traced(echo, verifier)
            verifier = issuer.aio_verifier(audience=ECHO_AUDIENCE)
            ours = bearer_grpc.aio.BearerServerInterceptor(
                verifier, echo_policy(), trace_subject=trace_subject
            )
            echo = Echo(ECHO_METHODS)
            serving = serve_aio(
                [echo.aio_handler()],
                interceptors=[aio_server_interceptor(tracer_provider=provider), ours],
            )
            target = stack.enter_context(loop.context(serving))
            channels["aio", trace_subject] = _traced_channel(stack, target, provider)
            steering["aio", trace_subject] = Traced(echo, verifier)
        yield channels, steering


@pytest.fixture
def servers(traced: tuple[Servers, Steering]) -> Servers:
    return traced[0]


@pytest.fixture
def steering(traced: tuple[Servers, Steering]) -> Iterator[Steering]:
    yield traced[1]
    for server in traced[1].values():
        server.echo.reset()


def _traced_channel(stack: ExitStack, target: str, provider: TracerProvider) -> grpc.Channel:
    channel = stack.enter_context(grpc.insecure_channel(target))
    traced: grpc.Channel = grpcext.intercept_channel(
        channel, client_interceptor(tracer_provider=provider)
    )
    return traced


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    """The exporter, emptied."""
    exporter.clear()
    return exporter


@pytest.fixture(params=["sync", "aio"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)
