"""A Go client no one here wrote (tests/interop/go_client/main.go), built offline from
Debian's packages (golang-go, golang-golang-x-oauth2-dev, golang-github-coreos-go-oidc-dev,
golang-google-grpc-dev; .ci/run installs them): ``x/oauth2/clientcredentials`` gets a token
from our token endpoint (it form-encodes the Basic credentials, and the client id has a
``+``), go-oidc verifies it with the algorithms discovery lists (and, as its 2.x default,
refuses it with RS256 only), and a gRPC client with ``PerRPCCredentials`` calls a TLS
service protected by ``BearerServerInterceptor``: OK with the token, UNAUTHENTICATED
without. Skips, saying why, only when ``go`` or those packages are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import bearer_grpc
from tests.harness import HTTP_AUDIENCE, Http, http_service, load_example
from tests.interop._support import Tls

pytestmark = pytest.mark.process

GO_SOURCE = Path(__file__).with_name("go_client") / "main.go"
GOCODE = Path("/usr/share/gocode")
GO_PACKAGES = (
    "golang.org/x/oauth2/clientcredentials",
    "github.com/coreos/go-oidc",
    "google.golang.org/grpc/credentials/oauth",
)
BUILD_TIMEOUT = 300.0
RUN_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def go_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go client, built in GOPATH mode from Debian's Go source tree, offline."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("go is not installed (apt-get install golang-go): the Go client cannot run")
    missing = [p for p in GO_PACKAGES if not (GOCODE / "src" / p).is_dir()]
    if missing:
        pytest.skip(f"Debian's Go packages are missing {missing} (see .ci/run)")
    workspace = tmp_path_factory.mktemp("go")
    package = workspace / "src" / "bearerinterop"
    package.mkdir(parents=True)
    shutil.copy(GO_SOURCE, package / "main.go")
    binary = workspace / "client"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOPATH": f"{workspace}{os.pathsep}{GOCODE}",
    }
    done = subprocess.run(
        [go, "build", "-o", str(binary), "bearerinterop"],
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return binary


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    """A TokenService with its HTTP face on loopback."""
    with http_service(tmp_path_factory.mktemp("interop-go") / "data") as running:
        yield running


@pytest.fixture(scope="module")
def protected(http: Http, tls: Tls) -> Iterator[str]:
    """examples/server.py's service over TLS, trusting the TokenService's keys."""
    verifier = bearer_grpc.Verifier.from_token_service(http.service.target, audience=HTTP_AUDIENCE)
    server = load_example("server").create_server(verifier)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(tls.key, tls.cert)]))
    server.start()
    try:
        yield f"localhost:{port}"
    finally:
        server.stop(None).wait()
        verifier.close()


def test_go_oauth2_go_oidc_and_grpc_per_rpc_credentials(
    go_client: Path, http: Http, protected: str, tls: Tls
) -> None:
    client = http.service.add_client("svc+go", scopes=("orders.read",), audiences=(HTTP_AUDIENCE,))
    env = {
        **os.environ,
        "ISSUER": http.issuer,
        "CLIENT_ID": client.client_id,
        "CLIENT_SECRET": client.client_secret,
        "AUDIENCE": HTTP_AUDIENCE,
        "TARGET": protected,
        "CA_FILE": str(tls.ca_file),
        "METHOD": "/shop.v1.OrdersService/GetOrder",
    }
    done = subprocess.run(
        [str(go_client)], env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["token_type"] == "Bearer"
    assert result["subject"] == "svc+go"
    assert result["rs256_default_refuses"] is True
    # The empty request reached the handler, which found no order "": the token passed.
    assert result["with_token"] == "NotFound", result
    assert result["without_token"] == "Unauthenticated"
