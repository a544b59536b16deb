"""Certificate-bound access tokens (RFC 8705 §3): may this token be used on this call?

A bound token carries ``cnf: {"x5t#S256": T}``, where ``T`` is the base64url (no
padding) SHA-256 of the DER client certificate it was issued to. It may be used only
on a call made with that certificate. The rule, decided by :func:`check_binding` from
the token's ``cnf`` and the SHA-256 of the call's client certificate (or None):

- no ``cnf``: the token is unbound; allowed, unless the method requires binding;
- ``cnf`` is an object whose only member is ``x5t#S256``, a canonical base64url
  SHA-256 (43 characters): allowed when the call has a client certificate with that
  thumbprint (compared in constant time), refused otherwise (no certificate, another
  one);
- anything else in ``cnf`` is refused, never ignored: a value that is not an object, an
  empty object, a malformed thumbprint, or another confirmation method (``jkt`` of
  DPoP, ``jwk``, ``x5t``...). Such a token is sender-constrained in a way this server
  cannot check, and ignoring the constraint would accept it from anyone holding it.

Every refusal is :class:`~bearer_grpc.core.errors.TokenBindingMismatch`
(``TOKEN_BINDING_MISMATCH``, UNAUTHENTICATED, RFC 6750 ``invalid_token``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Final

from bearer_grpc.core.errors import TokenBindingMismatch

CONFIRMATION: Final = "cnf"
"""The claim holding a token's proof-of-possession constraint (RFC 7800)."""
X5T_S256: Final = "x5t#S256"
"""The ``cnf`` member of a certificate-bound token (RFC 8705 §3.1)."""

_THUMBPRINT: Final = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, base64url, no padding


def thumbprint(der: bytes) -> str:
    """The ``x5t#S256`` of a DER certificate: base64url(SHA-256(DER)), no padding."""
    return encode_thumbprint(hashlib.sha256(der).digest())


def encode_thumbprint(digest: bytes) -> str:
    """The ``x5t#S256`` text of a certificate's SHA-256 ``digest``."""
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def bound_digest(cnf: Any) -> bytes:
    """The SHA-256 a ``cnf`` claim binds its token to.

    Raises:
        TokenBindingMismatch: ``cnf`` is not an object holding exactly ``x5t#S256``,
            a canonical base64url SHA-256.
    """
    if not isinstance(cnf, Mapping) or len(cnf) != 1:
        raise TokenBindingMismatch("unsupported token confirmation")
    value = cnf.get(X5T_S256)
    digest = _decoded(value) if isinstance(value, str) else None
    if digest is None:
        raise TokenBindingMismatch("unsupported token confirmation")
    return digest


@functools.lru_cache(maxsize=1024)
def _decoded(value: str) -> bytes | None:
    """The 32 bytes a canonical ``x5t#S256`` spells, or None.

    Cached: a bound token's thumbprint is read on every call it makes, and decoding costs
    more than the rest of the check.
    """
    if _THUMBPRINT.fullmatch(value) is None:
        return None
    digest = base64.urlsafe_b64decode(value + "=")
    # the last character carries 2 unused bits: only their zero spelling is canonical
    return digest if encode_thumbprint(digest) == value else None


def check_binding(
    claims: Mapping[str, Any], certificate: bytes | None, *, required: bool = False
) -> None:
    """Refuse a token that may not be used with the call's client certificate.

    Args:
        claims: The verified token's claims (``Principal.claims``).
        certificate: SHA-256 of the call's DER client certificate, or None when the
            call has none (plaintext, no client certificate, nothing trusted).
        required: The method accepts certificate-bound tokens only.

    Raises:
        TokenBindingMismatch: The token is bound and the call lacks its certificate;
            its ``cnf`` cannot be checked; or it is unbound and binding is required.
    """
    cnf = claims.get(CONFIRMATION)
    if cnf is None:
        if CONFIRMATION in claims:  # "cnf": null is malformed, not absent
            raise TokenBindingMismatch("unsupported token confirmation")
        if required:
            raise TokenBindingMismatch("certificate-bound token required")
        return
    expected = bound_digest(cnf)
    if certificate is None:
        raise TokenBindingMismatch("client certificate required")
    if not hmac.compare_digest(expected, certificate):
        raise TokenBindingMismatch()
