"""A throwaway PKI for mutual TLS on loopback: one CA, a server certificate for
127.0.0.1 and localhost, and client certificates it signed (made fresh per session,
never stored outside the test's temporary folder)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bearer_grpc.core.binding import thumbprint

_PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class Identity:
    """A certificate and its private key.

    Attributes:
        cert_pem: The certificate (PEM).
        key_pem: Its private key (PEM, unencrypted; repr hides it).
        der: The certificate (DER): what ``x5t#S256`` is the SHA-256 of.
    """

    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    der: bytes = field(repr=False)

    @property
    def x5t(self) -> str:
        """The certificate's ``x5t#S256``."""
        return thumbprint(self.der)


@dataclass(frozen=True)
class Pki:
    """The CA certificate, the server's identity, and clients by name."""

    ca_pem: bytes
    server: Identity
    clients: dict[str, Identity]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    signer: ec.EllipticCurvePrivateKey,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """``subject``'s certificate for ``key``, signed by ``issuer``'s ``signer``, valid
    for a day; ``extensions`` are (extension, critical) pairs."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


def _identity(
    subject: str, issuer: str, signer: ec.EllipticCurvePrivateKey, *, server: bool = False
) -> Identity:
    """A leaf for a server (127.0.0.1 and localhost) or a client (a SPIFFE-style URI)."""
    key = ec.generate_private_key(ec.SECP256R1())
    if server:
        usage = ExtendedKeyUsageOID.SERVER_AUTH
        names: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
    else:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH
        names = [x509.UniformResourceIdentifier(f"spiffe://bound.test/{subject}")]
    cert = _certificate(
        subject,
        key,
        issuer,
        signer,
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.ExtendedKeyUsage([usage]), False),
            (x509.SubjectAlternativeName(names), False),
        ],
    )
    key_pem = key.private_bytes(
        _PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Identity(cert.public_bytes(_PEM), key_pem, cert.public_bytes(serialization.Encoding.DER))


def make_pki(*client_names: str) -> Pki:
    """A CA, a server identity and one client identity per name."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = "bearer-grpc bound-token test CA"
    constraints = x509.BasicConstraints(ca=True, path_length=0)
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, [(constraints, True)])
    server = _identity("127.0.0.1", ca_name, ca_key, server=True)
    clients = {name: _identity(name, ca_name, ca_key) for name in client_names}
    return Pki(ca.public_bytes(_PEM), server, clients)
