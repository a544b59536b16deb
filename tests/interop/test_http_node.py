"""Node's openid-client and jose against the HTTP face (tests/interop/http_node_client.mjs):
discovery; client credentials with client_secret_basic (openid-client form-encodes the
id and secret, as RFC 6749 asks, and the client's id has a ``+`` that this changes);
introspection and revocation with client_secret_post; jose verifying the token from the
JWKS URL with ``typ: at+jwt``, and refusing it as ``typ: JWT``.

Needs ``node`` and the npm devDependencies; skips, saying why, only when ``node`` is
absent or the install fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import HTTP_AUDIENCE, REPO, Http, http_service
from tests.interop._support import NODE_TIMEOUT

pytestmark = pytest.mark.process

NODE_CLIENT = Path(__file__).with_name("http_node_client.mjs")
NODE_PACKAGES = ("openid-client", "jose")


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    """A TokenService with its HTTP face on loopback."""
    with http_service(tmp_path_factory.mktemp("interop-node") / "data") as running:
        yield running


def test_openid_client_and_jose(http: Http, node: str) -> None:
    missing = [p for p in NODE_PACKAGES if not (REPO / "node_modules" / p).is_dir()]
    if missing:
        pytest.skip(f"node_modules lacks {missing}: run npm ci")
    plus = http.service.add_client("svc+node", scopes=("orders.read",), audiences=(HTTP_AUDIENCE,))
    env = {
        **os.environ,
        "CLIENT_ID": plus.client_id,
        "CLIENT_SECRET": plus.client_secret,
        "INTROSPECTOR_ID": http.introspector.client_id,
        "INTROSPECTOR_SECRET": http.introspector.client_secret,
    }
    done = subprocess.run(
        [node, str(NODE_CLIENT), http.issuer, HTTP_AUDIENCE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["issuer"] == http.issuer
    assert (result["token_type"].lower(), result["scope"]) == ("bearer", "orders.read")
    assert result["verified"] == {"sub": "svc+node", "typ": "at+jwt", "alg": "ES256"}
    assert result["wrongTyp"] == "ERR_JWT_CLAIM_VALIDATION_FAILED"
    assert result["before"] == {"active": True, "sub": "svc+node", "client_id": "svc+node"}
    assert result["after"] == {"active": False}
    assert result["refused"] == {  # read from the Basic challenge of the 401
        "error": "invalid_client",
        "code": "OAUTH_WWW_AUTHENTICATE_CHALLENGE",
        "status": 401,
    }
