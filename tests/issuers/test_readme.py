"""README.md's "Your identity provider": its block runs as written against real OpenID
providers (four oidc-provider processes stand in for the four vendors; only the issuer
URLs and audiences are swapped), and the interceptor it builds protects a real server."""

from __future__ import annotations

import re
import shutil
from contextlib import ExitStack
from typing import Any

import grpc
import pytest

import bearer_grpc
from bearer_grpc.testing import Echo, serve
from tests.issuers._support import ORDERS, REPO, echo_answer_on, running_provider

pytestmark = pytest.mark.process
HEADING = "## Your identity provider"
VENDORS = ("keycloak", "auth0", "okta", "entra")


def _block() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n{HEADING}\n")
    section = text[start : text.index("\n## ", start + 1)]
    (block,) = re.findall(r"^```python\n(.*?)^```$", section, re.M | re.S)
    return block


def test_block_runs_against_oidc_provider() -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    block = _block()
    pattern = r'^(\w+) = Verifier\.from_issuer\(\s*"([^"]+)",\s*audience="([^"]+)"'
    calls = re.findall(pattern, block, re.M)
    assert [name for name, _, _ in calls] == list(VENDORS)
    namespace: dict[str, Any] = {}
    with ExitStack() as stack:
        providers = {name: stack.enter_context(running_provider()) for name in VENDORS}
        code = block
        for name, issuer, audience in calls:
            code = code.replace(f'"{issuer}"', f'"{providers[name].issuer}"', 1)
            code = code.replace(f'audience="{audience}"', f'audience="{ORDERS}"', 1)
        exec(compile(code, "README.md (Your identity provider)", "exec"), namespace)  # noqa: S102
        verifier = namespace["verifier"]
        stack.callback(verifier.close)
        tokens = {name: provider.token() for name, provider in providers.items()}
        for name in ("keycloak", "auth0", "okta"):  # their presets accept at+jwt tokens
            assert verifier.verify(tokens[name]).issuer == providers[name].issuer
        with pytest.raises(bearer_grpc.TokenInvalid):  # Entra's tokens are typ JWT
            verifier.verify(tokens["entra"])
        interceptor = namespace["interceptor"]
        with serve([Echo().handler()], interceptors=[interceptor]) as target:
            answer = echo_answer_on(target, "unary_unary", tokens["keycloak"])
            assert answer.startswith(providers["keycloak"].issuer.encode())
            with pytest.raises(grpc.RpcError) as refused:
                echo_answer_on(target, "unary_unary", None)
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
