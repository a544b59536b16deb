"""``bearer-grpc authz`` as operators run it: options, health, metrics, SIGTERM."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import httpx
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc

from bearer_grpc.testing import TestIssuer
from tests.harness import (
    SERVING,
    Cli,
    RunningService,
    assert_one_line_error,
    health_status,
    wait_until,
)
from tests.mesh._stack import AUDIENCE, Tokens
from tests.mesh._support import Authz

pytestmark = [pytest.mark.process, pytest.mark.timeout(120)]


def check_request(path: str, token: str | None) -> pb.CheckRequest:
    check = pb.CheckRequest()
    http = check.attributes.request.http
    http.path = path
    http.headers["content-type"] = "application/grpc"
    if token is not None:
        http.headers["authorization"] = f"Bearer {token}"
    return check


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "--audience is required"),
        (
            ("--audience", "a", "--issuer", "https://x.test", "--token-service", "h:1"),
            "give one of",
        ),
        (("--audience", "a", "--jwks-url", "https://x.test/jwks"), "need --issuer"),
        (("--audience", "a", "--introspection-url", "https://x.test/i"), "needs --client-id"),
        (("--audience", "a", "--policy", "missing.toml"), "cannot read the policy file"),
        (("--audience", "a", "--listen", "nowhere"), "HOST:PORT"),
    ],
)
def test_a_mistake_is_one_line_on_stderr(tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    line = assert_one_line_error(Cli(tmp_path)("authz", *args))
    assert words in line


def test_a_bad_policy_file_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text('public = ["/a.B/*"]\nstrict = "yes"\n')
    line = assert_one_line_error(
        Cli(tmp_path)("authz", "--audience", "a", "--policy", "policy.toml")
    )
    assert line.endswith("policy.toml, line 2: strict must be true or false"), line


def test_any_issuer_serves_check_health_and_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    issuer = TestIssuer()
    (tmp_path / "jwks.json").write_text(json.dumps(issuer.jwks))
    (tmp_path / "policy.toml").write_text('[scopes]\n"/shop.v1.Orders/*" = ["orders.read"]\n')
    args = [
        "--audience", "orders", "--issuer", issuer.issuer, "--jwks-file", "jwks.json",
        "--policy", "policy.toml", "--metrics-listen", "127.0.0.1:0",
    ]  # fmt: skip
    authz = Authz(tmp_path, args)
    try:
        target = f"127.0.0.1:{authz.port}"
        assert health_status(target) == SERVING
        assert health_status(target, "envoy.service.auth.v3.Authorization") == SERVING
        token = issuer.token(subject="svc", scopes=["orders.read"], audience="orders")
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.AuthorizationStub(channel)
            allowed = stub.Check(check_request("/shop.v1.Orders/Get", token), timeout=10)
            refused = stub.Check(check_request("/shop.v1.Orders/Get", None), timeout=10)
        assert allowed.status.code == 0
        assert refused.status.code == 16
        assert authz.process is not None
        records = authz.process.records()
        [metrics] = [r for r in records if r["message"] == "metrics listening"]
        text = httpx.get(f"http://127.0.0.1:{metrics['port']}/metrics", timeout=5).text
        assert 'bearer_grpc_authz_checks_total{decision="allowed",reason="none"} 1.0' in text
        assert (
            'bearer_grpc_authz_checks_total{decision="denied",reason="token_missing"} 1.0' in text
        )
        assert authz.process.stop() == 0  # SIGTERM
        log = authz.process.output()
        assert token not in log
        assert '"message":"stopped"' in log
    finally:
        authz.kill()


FLAGS = (
    "--token-service",
    "--remote",
    "--issuer",
    "--jwks-url",
    "--jwks-file",
    "--profile",
    "--introspection-url",
    "--policy",
    "--metrics-listen",
    "--grace",
)


def test_help_lists_every_source(tmp_path: Path) -> None:
    text = Cli(tmp_path).ok("authz", "--help").stdout
    for flag in FLAGS:
        assert flag in text


def test_remote_mode_asks_verify_token_and_follows_revocations(
    tmp_path: Path, token_service: RunningService, tokens: Tokens
) -> None:
    args = ["--audience", AUDIENCE, "--token-service", token_service.target, "--remote"]
    authz = Authz(tmp_path, args)
    try:
        token = tokens.issue()
        with grpc.insecure_channel(f"127.0.0.1:{authz.port}") as channel:
            stub = pb_grpc.AuthorizationStub(channel)
            answer = stub.Check(check_request("/mesh.v1.Echo/Unary", token), timeout=10)
            assert answer.status.code == 0
            tokens.revoke(token)
            wait_until(
                lambda: stub.Check(check_request("/a.B/C", token), timeout=10).status.code == 16
            )
    finally:
        authz.kill()
