"""A throwaway PKI for TLS and mutual TLS on loopback: a CA, a server certificate it signed
for a host name and 127.0.0.1, and client certificates by name.

Everything is made fresh per call (P-256 keys, valid for a day) and written nowhere but
where a test asks (:meth:`Identity.write`, :meth:`Pki.write_ca`, :func:`pki_files`).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bearer_grpc.core.binding import thumbprint

_PEM = serialization.Encoding.PEM
CLIENT_URI_PREFIX = "spiffe://bound.test/"
"""A client certificate's URI SAN: this prefix and the client's name."""


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

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write ``STEM.pem`` (the certificate) and ``STEM.key`` into ``directory``.

        Returns:
            The certificate's and the key's paths.
        """
        cert, key = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert.write_bytes(self.cert_pem)
        key.write_bytes(self.key_pem)
        return cert, key


@dataclass(frozen=True)
class Pki:
    """The CA certificate, the server's identity, and clients by name."""

    ca_pem: bytes
    server: Identity
    clients: dict[str, Identity]

    def write_ca(self, directory: Path, name: str = "ca.pem") -> Path:
        """Write the CA certificate into ``directory``; returns its path."""
        path = directory / name
        path.write_bytes(self.ca_pem)
        return path


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
    subject: str, issuer: str, signer: ec.EllipticCurvePrivateKey, *, host: str | None = None
) -> Identity:
    """A leaf for a server (``host`` and 127.0.0.1) or a client (a SPIFFE-style URI)."""
    key = ec.generate_private_key(ec.SECP256R1())
    if host is not None:
        usage = ExtendedKeyUsageOID.SERVER_AUTH
        names: list[x509.GeneralName] = [
            x509.DNSName(host),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
    else:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH
        names = [x509.UniformResourceIdentifier(f"{CLIENT_URI_PREFIX}{subject}")]
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


def make_pki(
    *client_names: str, host: str = "localhost", ca_name: str = "bearer-grpc test CA"
) -> Pki:
    """A CA, a server identity for ``host`` (and 127.0.0.1), and one client identity per
    name, all signed by the CA."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    constraints = x509.BasicConstraints(ca=True, path_length=0)
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, [(constraints, True), (usage, True)])
    server = _identity(host, ca_name, ca_key, host=host)
    clients = {name: _identity(name, ca_name, ca_key) for name in client_names}
    return Pki(ca.public_bytes(_PEM), server, clients)


@dataclass(frozen=True)
class PkiFiles:
    """PEM files of :func:`pki_files`.

    Attributes:
        ca: The CA certificate.
        server_cert: The server's certificate (``localhost`` and 127.0.0.1).
        server_key: Its key.
        client_cert: A client certificate the CA signed.
        client_key: Its key.
        stranger_cert: A client certificate another CA signed.
        stranger_key: Its key.
    """

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


def pki_files(directory: Path) -> PkiFiles:
    """A :func:`make_pki` with the client ``client``, and a ``stranger`` of another CA,
    written into ``directory``."""
    pki = make_pki("client")
    stranger = make_pki("stranger", ca_name="another test CA").clients["stranger"]
    return PkiFiles(
        pki.write_ca(directory),
        *pki.server.write(directory, "server"),
        *pki.clients["client"].write(directory, "client"),
        *stranger.write(directory, "stranger"),
    )
