"""Certificate binding on the server, for both interceptors.

The rule of :mod:`bearer_grpc.core.binding`, applied with the call's client certificate.

``intercept_service`` sees only the method and the metadata, so the check runs in the
wrapped handler, before the application's behaviour, with the call's servicer context
(sync or asyncio: ``auth_context()`` and ``invocation_metadata()`` are plain methods on
both). It runs on every call, cache hit or not: a verified token is cached across
calls, but the certificate belongs to the connection each call arrives on.

Where the certificate comes from is decided once, when the interceptor is made:

- by default, from the TLS connection: the peer's leaf certificate, which grpc puts in
  ``context.auth_context()["x509_pem_cert"]`` on a port opened with
  ``grpc.ssl_server_credentials(..., require_client_auth=True)`` (none on plaintext,
  local or server-only TLS ports);
- with ``trusted_certificate_header``, only from that header, set by a TLS-terminating
  proxy (:mod:`bearer_grpc.core.client_cert`); the connection's own certificate, which
  is then the proxy's, is never looked at. The proxy must remove the header from what
  clients send, and the server must be reachable only through the proxy: otherwise a
  client can name any certificate it likes.
"""

from __future__ import annotations

from typing import Any, Final

from bearer_grpc.core.binding import CONFIRMATION, check_binding
from bearer_grpc.core.client_cert import TRUSTED_HEADERS, header_sha256, pem_sha256
from bearer_grpc.core.errors import TokenBindingMismatch
from bearer_grpc.core.tokens import Principal

PEER_CERTIFICATE: Final = "x509_pem_cert"
"""The auth-context property holding the PEM of the TLS peer's leaf certificate."""


class CertificateBinding:
    """Checks a caller's token against the client certificate of its call.

    Args:
        trusted_header: None (read the TLS connection), or one of
            :data:`~bearer_grpc.core.client_cert.TRUSTED_HEADERS` to read instead.

    Raises:
        ValueError: ``trusted_header`` is not one of those.
    """

    __slots__ = ("_header",)

    def __init__(self, trusted_header: str | None = None) -> None:
        if trusted_header is not None and trusted_header not in TRUSTED_HEADERS:
            raise ValueError(
                "trusted_certificate_header must be None, "
                + " or ".join(repr(name) for name in TRUSTED_HEADERS)
            )
        self._header = trusted_header

    def __repr__(self) -> str:
        return f"CertificateBinding(trusted_header={self._header!r})"

    @staticmethod
    def applies(principal: Principal, required: bool) -> bool:
        """Whether a call of this caller needs the check (else it costs nothing more)."""
        return required or CONFIRMATION in principal.claims

    def error(
        self, principal: Principal, required: bool, context: Any
    ) -> TokenBindingMismatch | None:
        """The refusal of this call, if its certificate does not fit the token.

        Args:
            principal: The verified caller.
            required: The method's rule requires a certificate-bound token.
            context: The call's servicer context (sync or asyncio).
        """
        if not required and CONFIRMATION not in principal.claims:
            return None
        try:
            check_binding(principal.claims, self.certificate(context), required=required)
        except TokenBindingMismatch as err:
            return err
        return None

    def certificate(self, context: Any) -> bytes | None:
        """SHA-256 of the call's client certificate (DER), or None when it has none."""
        header = self._header
        if header is None:
            pems = context.auth_context().get(PEER_CERTIFICATE)
            return pem_sha256(pems[0]) if pems is not None and len(pems) == 1 else None
        metadata = context.invocation_metadata() or ()
        return header_sha256(header, [value for key, value in metadata if key == header])
