"""A Node client (@grpc/grpc-js, tests/interop/node_client.js) against protected Python
servers, sync and asyncio: the token as plain ``authorization`` metadata, or as call
credentials over TLS; refusals decoded from ``grpc-status-details-bin`` on the Node side.

Needs ``node`` and the npm devDependencies (package-lock.json). When node_modules lacks
them, the ``node`` fixture (conftest.py) runs ``npm ci`` once; it skips, saying why, only
when ``node`` is absent or the install fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bearer_grpc.testing import TestIssuer
from tests.harness import REPO
from tests.interop._support import ALL_SCOPES, AUDIENCE, NODE_TIMEOUT, Ports, Tls, address

pytestmark = pytest.mark.process

NODE_CLIENT = Path(__file__).with_name("node_client.js")
SUBJECT = "node-client"
UNAUTHENTICATED, PERMISSION_DENIED = 16, 7


def _run_node(
    node: str, target: str, token: str | None, *args: str
) -> tuple[int, list[dict[str, Any]]]:
    env = {k: v for k, v in os.environ.items() if k != "BEARER_GRPC_TOKEN"}
    if token is not None:
        env["BEARER_GRPC_TOKEN"] = token
    result = subprocess.run(
        [node, str(NODE_CLIENT), "--target", target, *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return result.returncode, lines


def _by_rpc(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {result["rpc"]: result for result in results}


def _assert_all_four_succeeded(status: int, results: list[dict[str, Any]]) -> None:
    assert status == 0, results
    calls = _by_rpc(results)
    assert list(calls) == ["GetOrder", "ListOrders", "UploadOrders", "Chat"]
    assert calls["GetOrder"]["response"]["order"] == {
        "order_id": "order-1",
        "item": "blue widget",
        "quantity": 2,
        "created_by": "shop-admin",
    }
    listed = [item["order"]["order_id"] for item in calls["ListOrders"]["response"]]
    assert listed == ["order-1", "order-2", "order-3"]
    uploaded = calls["UploadOrders"]["response"]
    assert len(uploaded["order_ids"]) == 2
    assert uploaded["created_by"] == SUBJECT
    assert [answer["text"] for answer in calls["Chat"]["response"]] == [
        f"{SUBJECT} said 'hello'",
        f"{SUBJECT} said 'anything new?'",
    ]


def _assert_refused(result: dict[str, Any], code: int, reason: str) -> None:
    assert result["ok"] is False, result
    assert result["code"] == code, result
    assert [(info["domain"], info["reason"]) for info in result["errorInfo"]] == [
        ("bearer-grpc", reason)
    ], result


def test_node_calls_all_four_kinds_with_a_token(
    node: str, protected: Ports, issuer: TestIssuer
) -> None:
    token = issuer.token(subject=SUBJECT, scopes=ALL_SCOPES, audience=AUDIENCE)
    _assert_all_four_succeeded(*_run_node(node, address(protected, "plaintext"), token))


def test_node_without_token_gets_token_missing(node: str, protected: Ports) -> None:
    status, results = _run_node(node, address(protected, "plaintext"), None)
    assert status == 1
    assert len(results) == 4
    for result in results:
        _assert_refused(result, UNAUTHENTICATED, "TOKEN_MISSING")
        assert result["details"] == "missing bearer token"


def test_node_with_forged_token_gets_token_invalid(node: str, protected: Ports) -> None:
    forged = TestIssuer().token(subject=SUBJECT, scopes=ALL_SCOPES, audience=AUDIENCE)
    status, results = _run_node(
        node, address(protected, "plaintext"), forged, "--calls", "GetOrder"
    )
    assert status == 1
    [result] = results
    _assert_refused(result, UNAUTHENTICATED, "TOKEN_INVALID")


def test_node_with_read_only_token_is_denied_writes(
    node: str, protected: Ports, issuer: TestIssuer
) -> None:
    token = issuer.token(subject=SUBJECT, scopes=["orders.read"], audience=AUDIENCE)
    status, results = _run_node(node, address(protected, "plaintext"), token)
    assert status == 1
    calls = _by_rpc(results)
    assert calls["GetOrder"]["ok"] and calls["ListOrders"]["ok"], results
    _assert_refused(calls["UploadOrders"], PERMISSION_DENIED, "INSUFFICIENT_SCOPE")
    _assert_refused(calls["Chat"], PERMISSION_DENIED, "INSUFFICIENT_SCOPE")


def test_node_over_tls_with_call_credentials(
    node: str, protected: Ports, issuer: TestIssuer, tls: Tls
) -> None:
    token = issuer.token(subject=SUBJECT, scopes=ALL_SCOPES, audience=AUDIENCE)
    target = address(protected, "tls")
    _assert_all_four_succeeded(*_run_node(node, target, token, "--tls-ca", str(tls.ca_file)))
