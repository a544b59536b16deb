"""RFC 8705 on the issuing side: a certificate-bound client gets tokens only over mTLS,
each carrying ``cnf.x5t#S256``, the base64url SHA-256 of its DER client certificate."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bearer_grpc.service.admin import NewClient
from bearer_grpc.service.server import ServeConfig
from bearer_grpc.store import sqlite_url
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import (
    Cli,
    PkiFiles,
    RunningService,
    client_request,
    jwt_segment,
    pki_files,
    running_service,
)
from tests.stolen._support import grpc_code


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    """A CA, a server certificate for 127.0.0.1 and a client certificate it signed."""
    return pki_files(tmp_path_factory.mktemp("pki"))


def _mtls_stub(service: RunningService, pki: PkiFiles) -> pb_grpc.TokenServiceStub:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=pki.client_key.read_bytes(),
        certificate_chain=pki.client_cert.read_bytes(),
    )
    channel = grpc.secure_channel(service.target, credentials)
    service.channels.append(channel)
    return pb_grpc.TokenServiceStub(channel)


def _thumbprint(pem: bytes) -> str:
    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def _bound(service: RunningService) -> NewClient:
    return service.admin.add_client(
        "bound-client", scopes=("orders.read",), audiences=("orders",), certificate_bound=True
    )


def test_rfc8705_a_bound_client_over_mtls_gets_its_certificate_thumbprint(
    tmp_path: Path, pki: PkiFiles
) -> None:
    config = ServeConfig(
        listen="127.0.0.1:0",
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
        tls_client_ca=pki.ca,
        grace=1,
    )
    with running_service(sqlite_url(tmp_path / "data"), config=config) as service:
        bound = _bound(service)
        plain = service.admin.add_client("plain", scopes=(), audiences=("orders",))
        stub = _mtls_stub(service, pki)
        issued = stub.IssueToken(client_request(bound.client_id, bound.client_secret))
        claims = jwt_segment(issued.access_token, 1)
        assert claims["cnf"] == {"x5t#S256": _thumbprint(pki.client_cert.read_bytes())}
        unbound = stub.IssueToken(client_request(plain.client_id, plain.client_secret))
        assert "cnf" not in jwt_segment(unbound.access_token, 1)


def test_rfc8705_a_bound_client_without_a_certificate_is_refused_like_bad_credentials(
    service: RunningService,
) -> None:
    bound = _bound(service)
    stub = service.stub()  # plaintext: no client certificate
    right = grpc_code(lambda: stub.IssueToken(client_request(bound.client_id, bound.client_secret)))
    wrong = grpc_code(lambda: stub.IssueToken(client_request(bound.client_id, "wrong")))
    assert right == wrong == grpc.StatusCode.UNAUTHENTICATED


def test_rfc8705_clients_add_certificate_bound(cli: Cli) -> None:
    cli.ok("clients", "add", "svc", "--audiences", "orders", "--certificate-bound")
    cli.ok("clients", "add", "other", "--audiences", "orders")
    rows = {row["name"]: row for row in json.loads(cli.ok("clients", "list", "--json").stdout)}
    assert rows["svc"].get("certificate_bound") is True
    assert "certificate_bound" not in rows["other"]
