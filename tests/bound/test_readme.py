"""README.md's "Certificate-bound tokens": its block runs as written (only the address is
swapped for the test's own) and protects a real server with mutual TLS."""

from __future__ import annotations

import re
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

import bearer_grpc
from bearer_grpc.testing import Echo, bearer, path
from tests.bound._servers import Tokens, answer, ask, mtls_channel
from tests.harness import Pki, refusal

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "## Certificate-bound tokens"
ADDRESS = "0.0.0.0:50443"


def _block() -> str:
    text = README.read_text()
    start = text.index(f"\n{HEADING}\n")
    section = text[start : text.index("\n## ", start + 1)]
    (block,) = re.findall(r"^```python\n(.*?)^```$", section, re.M | re.S)
    return str(block)


def test_block_runs_and_checks_the_binding(tokens: Tokens, pki: Pki, tmp_path: Path) -> None:
    block = _block()
    assert ADDRESS in block
    address = f"unix:{tmp_path / 'payments.sock'}"  # a fixed address, free by construction
    namespace: dict[str, Any] = {
        "bearer_grpc": bearer_grpc,
        "futures": futures,
        "grpc": grpc,
        "verifier": tokens.verifier("sync"),
        "server_key": pki.server.key_pem,
        "server_certificate": pki.server.cert_pem,
        "client_ca": pki.ca_pem,
    }
    exec(compile(block.replace(ADDRESS, address), "README.md", "exec"), namespace)  # noqa: S102
    server: grpc.Server = namespace["server"]
    server.add_generic_rpc_handlers((Echo().handler(),))
    server.start()
    try:
        token = bearer(tokens.bound_to(pki.clients["alice"]))
        with mtls_channel(address, pki, pki.clients["alice"], "localhost") as alice:
            assert ask(alice, "unary_unary", path("Unary"), token) == answer("unary_unary")
        with mtls_channel(address, pki, pki.clients["mallory"], "localhost") as mallory:
            error = refusal(lambda: ask(mallory, "unary_unary", path("Unary"), token))
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        assert error.details() == "token bound to another certificate"
    finally:
        server.stop(None).wait()
