"""Opaque tokens checked by token introspection (RFC 7662): the request and the answer.

The verifier asks the issuer's introspection endpoint about each new token, with its
own client credentials (``client_secret_basic``: RFC 6749 §2.3.1 form-encodes id and
secret before base64). An ``active`` answer names the caller; it is trusted until the
earlier of the token's ``exp`` and ``max_cache_seconds`` after the answer, which is
how long a revocation at the issuer can go unnoticed here.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import quote

from bearer_grpc.core.errors import TokenExpired, TokenInvalid
from bearer_grpc.core.scopes import parse_scope_claim
from bearer_grpc.core.tokens import MAX_NUMERIC_DATE, Principal, is_expired

DEFAULT_MAX_CACHE_SECONDS: Final = 60
"""How long an ``active`` answer is trusted at most: the revocation delay."""


def basic_credentials(client_id: str, client_secret: str) -> str:
    """The ``Authorization`` value of ``client_secret_basic`` (RFC 6749 §2.3.1)."""
    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def introspection_form(token: str) -> dict[str, str]:
    """The form of an introspection request for an access token (RFC 7662 §2.1)."""
    return {"token": token, "token_type_hint": "access_token"}


def introspected(
    answer: Mapping[str, Any], *, audience: str, issuer: str | None, now: float, leeway: int
) -> Principal:
    """The caller an introspection answer names, for this ``audience``.

    ``active`` must be ``true``; ``aud`` must name ``audience`` (an answer without
    ``aud`` is refused: the token may be meant for another service); ``iss``, when both
    are known, must equal ``issuer``; the subject is ``sub``, or the ``client_id`` of a
    token a client holds for itself.

    Raises:
        TokenInvalid: Inactive, another audience or issuer, or malformed members.
        TokenExpired: Its ``exp`` has passed (beyond ``leeway``).
    """
    if answer.get("active") is not True:
        raise TokenInvalid()
    aud = answer.get("aud")
    audiences = (aud,) if isinstance(aud, str) else aud
    if not isinstance(audiences, list | tuple) or audience not in audiences:
        raise TokenInvalid()
    iss = answer.get("iss", issuer or "")
    if not isinstance(iss, str) or (issuer is not None and iss != issuer):
        raise TokenInvalid()
    times = [answer.get(name, 0) for name in ("exp", "iat")]
    if not all(type(t) is int and 0 <= t <= MAX_NUMERIC_DATE for t in times):
        raise TokenInvalid()
    exp, iat = times
    client_id, subject, jti = (answer.get(name, "") for name in ("client_id", "sub", "jti"))
    subject = subject or client_id
    if not all(isinstance(v, str) for v in (client_id, subject, jti)) or not subject:
        raise TokenInvalid()
    try:
        scopes = parse_scope_claim(answer.get("scope"))
    except ValueError as err:
        raise TokenInvalid() from err
    if exp and is_expired(exp, now, leeway):
        raise TokenExpired()
    return Principal(
        subject=subject,
        scopes=scopes,
        token_id=jti,
        issuer=iss,
        audience=tuple(audiences),
        client_id=client_id,
        issued_at=iat,
        expires_at=exp,
        claims=MappingProxyType(dict(answer)),
    )


def trusted_until(principal: Principal, *, now: float, max_cache_seconds: float) -> int:
    """When an ``active`` answer stops being trusted.

    That is the earlier of ``exp`` and ``max_cache_seconds`` from ``now``.
    """
    until = int(now + max_cache_seconds)
    return min(principal.expires_at, until) if principal.expires_at else until
