"""Who the client is: by its secret, or a public client naming itself with ``client_id``.

The secret comes as ``client_secret_basic`` or ``client_secret_post`` (RFC 6749 §2.3.1),
never both at once (§2.3); a public client names itself with ``client_id`` (§3.2.1).

Pure: this module reads the request; whether the secret is right is decided by the rules
(``TokenAuthority.issue`` with the client-credentials grant), as everywhere else.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

from bearer_grpc.service.http.basic import decode_basic
from bearer_grpc.service.http.errors import invalid_client, invalid_request
from bearer_grpc.service.http.form import Form

Method = Literal["client_secret_basic", "client_secret_post", "none"]
"""How the client authenticated; ``none``: a public client, or no client named."""


@dataclass(frozen=True)
class ClientAuth:
    """The client a request names, and its secret when it sent one.

    Attributes:
        method: How the client authenticated (see :data:`Method`).
        readings: ``(client_id, client_secret)`` pairs to try, in order: one, or two
            for a Basic header whose form-decoded and raw readings differ. Empty for
            ``none``. Hidden from repr.
        client_id: The id a public client named (``client_id`` without a secret), or "".
    """

    method: Method
    readings: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    client_id: str = ""

    @property
    def authenticated(self) -> bool:
        """Whether the request carries a client secret to check."""
        return self.method != "none"


def client_auth(authorization: str | None, form: Form) -> ClientAuth:
    """Read the client from the Authorization header and the form.

    Args:
        authorization: The request's one Authorization header, or None.
        form: The request's parameters.

    Raises:
        OAuthError: ``invalid_request`` when both methods are used, or a secret comes
            without an id; ``invalid_client`` for an Authorization header that is not
            a well-formed Basic one (see :func:`decode_basic`).
    """
    posted_id, posted_secret = form.get("client_id", ""), form.get("client_secret", "")
    if authorization is not None:
        if posted_secret:
            raise invalid_request("use one client authentication method, not two")
        readings = decode_basic(authorization)
        if posted_id and all(client_id != posted_id for client_id, _ in readings):
            raise invalid_request("client_id differs from the authenticated client")
        return ClientAuth("client_secret_basic", tuple(readings))
    if posted_secret:
        if not posted_id:
            raise invalid_request("client_secret needs a client_id")
        return ClientAuth("client_secret_post", ((posted_id, posted_secret),))
    return ClientAuth("none", client_id=posted_id)


def require_client(auth: ClientAuth) -> tuple[tuple[str, str], ...]:
    """The credentials to check, for an endpoint every client must authenticate at.

    Raises:
        OAuthError: ``invalid_client`` when the request carries no client secret.
    """
    if not auth.authenticated:
        raise invalid_client("client authentication required")
    return auth.readings


def client_certificate(request: web.Request) -> bytes | None:
    """The PEM client certificate of a request over mutual TLS, or None.

    The same form gRPC's ``auth_context()`` gives, so both faces bind tokens alike.
    """
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return ssl.DER_cert_to_PEM_cert(der).encode() if der else None
