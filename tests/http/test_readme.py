"""The README's "From any language" section runs as written: its ``curl`` lines against
a real HTTP face (its URLs pointed at the test's issuer), and its table names the
endpoints discovery lists."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bearer_grpc.service.settings import INTROSPECT_SCOPE
from tests.harness import HTTP_AUDIENCE, Http

pytestmark = pytest.mark.process

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text()
    start = text.index("## From any language\n")
    return text[start : text.index("\n## ", start + 1)]


def _curl_lines() -> list[str]:
    blocks = re.findall(r"^```sh\n(.*?)^```$", _section(), re.M | re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("curl ")]


def test_curl_lines_run_against_a_real_http_face(http: Http) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    client = http.service.add_client(
        "orders-client", scopes=("orders.read",), audiences=(HTTP_AUDIENCE,)
    )
    api = http.service.add_client(
        "orders-api", scopes=(INTROSPECT_SCOPE,), audiences=(HTTP_AUDIENCE,)
    )
    env = {**os.environ, "CLIENT_SECRET": client.client_secret, "API_SECRET": api.client_secret}
    lines = _curl_lines()
    assert len(lines) == 4

    def run(line: str) -> str:
        command = line.replace("https://tokens.example", http.issuer)
        done = subprocess.run(
            ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout

    discovery, token, introspect, revoke = lines
    assert json.loads(run(discovery))["issuer"] == http.issuer
    env["ACCESS_TOKEN"] = json.loads(run(token))["access_token"]
    assert json.loads(run(introspect))["active"] is True
    assert json.loads(run(revoke)) == {}
    assert json.loads(run(introspect)) == {"active": False}


def test_the_table_names_the_endpoints_discovery_lists(http: Http) -> None:
    document = http.get("/.well-known/openid-configuration").json()
    section = _section()
    for name in ("jwks_uri", "token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        path = document[name].removeprefix(http.issuer)
        assert f"`{'GET' if name == 'jwks_uri' else 'POST'} {path}`" in section
