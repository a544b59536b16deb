"""The deployment documents: the Envoy configurations run (sidecar as printed, the central
cluster with TLS and health checks), the Istio documents carry what Istio requires.

Istio itself needs a Kubernetes cluster and is not run here: its documents are checked as
YAML with the fields Istio's ``CUSTOM`` action and extension providers require.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest
import yaml

from tests.harness import RunningService, make_pki, wait_until
from tests.mesh._stack import AUDIENCE, Tokens, call
from tests.mesh._support import (
    REPO,
    Authz,
    Envoy,
    docs_block,
    envoy_binary,
    local,
    readme_block,
)

pytestmark = pytest.mark.process

AUTHZ_NAME = "authz.internal"


def test_the_sidecar_configuration_is_valid_as_printed(tmp_path: Path) -> None:
    config = tmp_path / "envoy.yaml"
    config.write_text(readme_block("envoy:sidecar"))
    result = subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(config), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ext_authz = yaml.safe_load(readme_block("envoy:sidecar"))["static_resources"]["listeners"][0]
    manager = ext_authz["filter_chains"][0]["filters"][0]["typed_config"]
    [check] = [f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.ext_authz"]
    assert check["typed_config"]["failure_mode_allow"] is False
    assert check["typed_config"]["grpc_service"]["timeout"] == "0.5s"
    assert manager["normalize_path"] is True and manager["merge_slashes"] is True


def test_the_istio_documents_carry_what_istio_requires() -> None:
    mesh_config, policy = yaml.safe_load_all(readme_block("istio"))
    [provider] = mesh_config["extensionProviders"]
    grpc_provider = provider["envoyExtAuthzGrpc"]
    assert provider["name"] and grpc_provider["service"] and int(grpc_provider["port"]) > 0
    assert grpc_provider["failOpen"] is False
    assert grpc_provider["timeout"] == "0.5s"
    assert policy["apiVersion"] in {"security.istio.io/v1", "security.istio.io/v1beta1"}
    assert policy["kind"] == "AuthorizationPolicy"
    assert policy["metadata"]["name"]
    spec = policy["spec"]
    assert spec["action"] == "CUSTOM"
    assert spec["provider"]["name"] == provider["name"]
    assert spec["rules"], "a CUSTOM policy applies only to requests its rules match"


def test_the_central_cluster_runs_with_tls_and_health_checks(
    tmp_path: Path, token_service: RunningService, echo_port: int, tokens: Tokens
) -> None:
    pki = make_pki(host=AUTHZ_NAME)
    cert, key = pki.server.write(tmp_path, "authz")
    ca = pki.write_ca(tmp_path)
    args = ["--audience", AUDIENCE, "--token-service", token_service.target]
    authz = Authz(tmp_path, [*args, "--tls-cert", str(cert), "--tls-key", str(key)])
    try:
        config = local(yaml.safe_load(readme_block("envoy:sidecar")), {"service": echo_port})
        central = yaml.safe_load(docs_block(REPO / "docs" / "mesh.md", "envoy:central-cluster"))
        tls = central["transport_socket"]["typed_config"]["common_tls_context"]
        tls["validation_context"]["trusted_ca"]["filename"] = str(ca)
        endpoint = central["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        assert endpoint["address"]["socket_address"]["address"] == AUTHZ_NAME
        endpoint["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": authz.port}
        clusters = config["static_resources"]["clusters"]
        config["static_resources"]["clusters"] = [
            central if cluster["name"] == "bearer_grpc_authz" else cluster for cluster in clusters
        ]
        envoy = Envoy(config, tmp_path)
        try:
            with grpc.insecure_channel(envoy.target()) as channel:
                token = tokens.issue()
                wait_until(lambda: call(channel, token) == grpc.StatusCode.OK, timeout=15)
                assert call(channel, None) == grpc.StatusCode.UNAUTHENTICATED
        finally:
            envoy.stop()
    finally:
        authz.kill()
