"""README.md's "Tracing" block runs as written: the instrumentation's interceptor first,
then bearer_grpc's."""

from __future__ import annotations

import re
from concurrent import futures
from typing import Any

import grpc

import bearer_grpc
from bearer_grpc.testing import TestIssuer
from tests.harness import REPO


def _block() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("\n## Tracing\n")
    section = text[start : text.index("\n## ", start + 1)]
    [block] = re.findall(r"^```python\n(.*?)^```$", section, re.M | re.S)
    return block


def test_tracing_block_builds_a_traced_protected_server() -> None:
    namespace: dict[str, Any] = {
        "grpc": grpc,
        "futures": futures,
        "bearer_grpc": bearer_grpc,
        "verifier": TestIssuer().verifier(),
        "policy": bearer_grpc.Policy(),
    }
    exec(compile(_block(), "README.md (Tracing)", "exec"), namespace)  # noqa: S102
    server = namespace["server"]
    try:
        interceptors = server._state.interceptor_pipeline.interceptors
        assert [type(i).__name__ for i in interceptors] == [
            "OpenTelemetryServerInterceptor",
            "BearerServerInterceptor",
        ]
    finally:
        server.stop(None)
