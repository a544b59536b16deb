"""What the interop tests share: addresses, the servers' TLS identity and channel
credentials."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import grpc

from tests.harness import make_pki

AUDIENCE = "orders"
ALL_SCOPES = ("orders.read", "orders.write")
SERVER_KINDS = ("sync", "aio")
TRANSPORTS = ("local", "tls")
NODE_TIMEOUT = 60.0
"""Longest one run of a Node client may take, in seconds."""


@dataclass(frozen=True)
class Tls:
    """The servers' certificate and key (``localhost`` and 127.0.0.1) and the CA that
    signed them, the clients' root (PEM; ``ca_file`` for Node and Go)."""

    cert: bytes
    key: bytes = field(repr=False)
    ca: bytes
    ca_file: Path


@dataclass(frozen=True)
class Ports:
    """One protected server's ports on 127.0.0.1."""

    kind: str
    plaintext: int
    local: int
    tls: int


def server_tls(directory: Path) -> Tls:
    """A fresh test PKI's server identity; its CA certificate is written to
    ``directory/ca.pem``."""
    pki = make_pki()
    return Tls(pki.server.cert_pem, pki.server.key_pem, pki.ca_pem, pki.write_ca(directory))


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
    return grpc.ssl_channel_credentials(root_certificates=tls.ca)
