"""Certificate-bound access tokens (RFC 8705 §3): a claim confirming a client's mTLS certificate.

A client registered as certificate-bound gets tokens only over mutual TLS, and every
access token it gets carries ``cnf: {"x5t#S256": THUMBPRINT}``, the base64url (no
padding) SHA-256 of the DER encoding of the certificate it authenticated with. A
protected service compares the claim with the certificate of each call, so a stolen
token is useless without the client's private key.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bearer_grpc.core.errors import InvalidGrant

CONFIRMATION_CLAIM: Final = "cnf"
"""The JWT claim of the confirmation method (RFC 7800)."""
THUMBPRINT_MEMBER: Final = "x5t#S256"
"""The member of ``cnf`` holding the certificate's SHA-256 thumbprint (RFC 8705 §3.1)."""


def certificate_thumbprint(pem: bytes) -> str:
    """The RFC 8705 thumbprint of a PEM certificate: base64url(SHA-256(DER)), no padding.

    Raises:
        InvalidGrant: The bytes hold no certificate (the TLS layer gave something else).
    """
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as err:
        raise InvalidGrant() from err
    digest = hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def confirmation(pem: bytes) -> dict[str, dict[str, str]]:
    """The ``cnf`` claim binding a token to the certificate in ``pem``."""
    return {CONFIRMATION_CLAIM: {THUMBPRINT_MEMBER: certificate_thumbprint(pem)}}
