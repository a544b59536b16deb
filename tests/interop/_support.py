"""What the interop tests share: addresses and channel credentials."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

AUDIENCE = "orders"
ALL_SCOPES = ("orders.read", "orders.write")
SERVER_KINDS = ("sync", "aio")
TRANSPORTS = ("local", "tls")


@dataclass(frozen=True)
class Tls:
    """A self-signed server certificate (also its own root) and its key, PEM."""

    cert: bytes
    key: bytes
    cert_file: Path


@dataclass(frozen=True)
class Ports:
    """One protected server's ports on 127.0.0.1."""

    kind: str
    plaintext: int
    local: int
    tls: int


def self_signed(directory: Path) -> Tls:
    """A certificate for ``localhost`` and ``127.0.0.1``, signed by its own key (P-256),
    valid for an hour; the PEM is also written to ``directory/cert.pem`` for Node."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_file = directory / "cert.pem"
    cert_file.write_bytes(cert_pem)
    return Tls(cert_pem, key_pem, cert_file)


def address(ports: Ports, transport: str) -> str:
    """Where to reach ``ports`` over ``transport`` (TLS by name, as certificates are checked)."""
    if transport == "local":
        return f"127.0.0.1:{ports.local}"
    if transport == "tls":
        return f"localhost:{ports.tls}"
    return f"127.0.0.1:{ports.plaintext}"


def channel_credentials(transport: str, tls: Tls) -> grpc.ChannelCredentials:
    """gRPC's own channel credentials for ``transport`` (``local`` or ``tls``)."""
    if transport == "local":
        return grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    return grpc.ssl_channel_credentials(root_certificates=tls.cert)
