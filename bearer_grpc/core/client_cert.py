r"""A call's client certificate, as its SHA-256: from TLS, or from a trusted proxy header.

Certificate binding (:mod:`.binding`) compares a token's ``x5t#S256`` with the SHA-256
of the DER client certificate of the call. The server reads that certificate from the
TLS connection (the PEM grpc puts in the auth context: :func:`pem_sha256`) or, only
when configured to trust a TLS-terminating proxy, from one of two headers:

- ``x-forwarded-client-cert`` (Envoy, "XFCC": :func:`xfcc_sha256`): comma-separated
  elements, one per proxy hop, each of ``;``-separated ``Key=value`` pairs (values may
  be double-quoted, with ``\"`` inside). ``Hash`` is the hex SHA-256 of the DER
  certificate, ``Cert`` the URL-encoded PEM; other keys (``By``, ``Subject``, ``URI``,
  ``DNS``, ``Chain``) are not read.
- ``client-cert`` (RFC 9440: :func:`client_cert_sha256`): the DER certificate as a
  Structured Field byte sequence, ``:<base64>:``.

The parsing decisions, all on the side of "no certificate" (then a bound token is
refused; an unbound one is unaffected):

- Exactly one entry of the header; none or several give no certificate.
- A value longer than :data:`MAX_HEADER_CHARS` is not parsed at all.
- XFCC: exactly one element. With several, which one is the client's depends on how
  every proxy on the path is configured (Envoy's ``APPEND_FORWARD`` adds the hop next
  to us last, which in a chain of proxies is a proxy's certificate; the first may have
  been sent by the client itself), so none is chosen: configure the proxy in front of
  the server to replace the header (Envoy ``SANITIZE_SET``), which leaves one element.
- XFCC: ``Hash`` must be 64 hex digits, ``Cert`` one PEM certificate; when both are
  present they must agree; a key given twice, a stray or unterminated quote, or a pair
  without ``=`` make the whole value unusable.
- RFC 9440: one bare byte sequence (no parameters), base64 with or without padding, a
  single DER certificate with no trailing bytes.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from typing import Final
from urllib.parse import unquote_to_bytes

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

XFCC: Final = "x-forwarded-client-cert"
"""Envoy's header (metadata key) for the client certificate of the connection it
terminated."""
CLIENT_CERT: Final = "client-cert"
"""RFC 9440's header (metadata key) for the client certificate a proxy received."""
TRUSTED_HEADERS: Final = (XFCC, CLIENT_CERT)
"""The headers a server may be configured to trust."""

MAX_HEADER_CHARS: Final = 16384
"""Longest header value parsed; longer ones give no certificate. A URL-encoded PEM of a
typical certificate is 1-4 KiB, and grpc's default metadata limit is 8 KiB."""

_HEX_SHA256: Final = re.compile(r"[0-9A-Fa-f]{64}")
_BYTE_SEQUENCE: Final = re.compile(r":([A-Za-z0-9+/]*)(={0,2}):")
_PEM_BEGIN: Final = b"-----BEGIN"


@functools.lru_cache(maxsize=256)
def pem_sha256(pem: bytes) -> bytes | None:
    """SHA-256 of the DER form of one PEM certificate, or None if it is not one.

    Cached (a bounded LRU): the certificate of a connection arrives with each of its
    calls, and parsing it costs far more than the lookup.
    """
    if pem.count(_PEM_BEGIN) != 1:
        return None
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest()


def der_sha256(der: bytes) -> bytes | None:
    """SHA-256 of one DER certificate, or None if ``der`` is not exactly one."""
    try:
        x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    return hashlib.sha256(der).digest()


def header_sha256(header: str, values: list[str]) -> bytes | None:
    """The certificate a trusted proxy header names.

    ``values`` are every entry of ``header`` (one of :data:`TRUSTED_HEADERS`) in the
    call's metadata.

    Returns:
        SHA-256 of the DER certificate, or None (no entry, several, or unusable).
    """
    if len(values) != 1:
        return None
    parse = xfcc_sha256 if header == XFCC else client_cert_sha256
    return parse(values[0])


def client_cert_sha256(value: str) -> bytes | None:
    """SHA-256 of the certificate in an RFC 9440 ``client-cert`` value, or None."""
    if len(value) > MAX_HEADER_CHARS:
        return None
    match = _BYTE_SEQUENCE.fullmatch(value.strip(" "))
    if match is None:
        return None
    data, padding = match.groups()
    if len(data) % 4 == 1 or (padding and (len(data) + len(padding)) % 4):
        return None
    try:
        der = base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except binascii.Error:
        return None
    return der_sha256(der)


def xfcc_sha256(value: str) -> bytes | None:
    """SHA-256 of the client certificate in an Envoy ``x-forwarded-client-cert`` value.

    The value must be one element, with ``Hash`` and/or ``Cert``; otherwise None.
    """
    if len(value) > MAX_HEADER_CHARS:
        return None
    elements = _xfcc_elements(value)
    if elements is None or len(elements) != 1:
        return None
    declared, cert = elements[0].get("hash"), elements[0].get("cert")
    if declared is not None and _HEX_SHA256.fullmatch(declared) is None:
        return None
    stated = bytes.fromhex(declared) if declared is not None else None
    computed = pem_sha256(unquote_to_bytes(cert)) if cert is not None else None
    if cert is not None and computed is None:
        return None
    if stated is not None and computed is not None and not hmac.compare_digest(stated, computed):
        return None  # the proxy's two statements disagree
    return computed or stated


def _xfcc_elements(value: str) -> list[dict[str, str]] | None:
    """The elements of an XFCC value as ``{lower-case key: value}``, quotes removed.

    None if the value is not well formed (see the module docstring).
    """
    elements: list[dict[str, str]] = []
    element: dict[str, str] = {}
    key: str | None = None
    text: list[str] = []
    quoted = escaped = closed = False
    for char in value + ",":  # the sentinel ends the last element
        if quoted:
            if escaped:
                text.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted, closed = False, True
            else:
                text.append(char)
        elif char in ";,":
            if not key or key in element:
                return None
            element[key] = "".join(text)
            key, text, closed = None, [], False
            if char == ",":
                elements.append(element)
                element = {}
        elif closed:  # nothing may follow a closing quote but ; or ,
            return None
        elif char == "=" and key is None:
            key = "".join(text).strip(" ").lower()
            text = []
        elif char == '"':
            if key is None or text:  # a quote opens a value, nowhere else
                return None
            quoted = True
        else:
            text.append(char)
    return None if quoted else elements
