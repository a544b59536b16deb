"""Remote verification: a ``VerifyToken`` request, and its answer as a principal or an error.

The error is the one the answer names. Shared by both flavours.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from google.protobuf import json_format

from bearer_grpc.core.errors import (
    AuthError,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenMissing,
    TokenRevoked,
)
from bearer_grpc.core.tokens import Principal
from bearer_grpc.core.verification import LocalVerification
from bearer_grpc.v1 import token_service_pb2 as pb

_REMOTE_ERRORS: Final[Mapping[str, type[AuthError]]] = {
    error.reason: error
    for error in (TokenMissing, TokenMalformed, TokenInvalid, TokenExpired, TokenRevoked)
}


def remote_request(local: LocalVerification, token: str) -> pb.VerifyTokenRequest:
    """The ``VerifyToken`` request for ``token`` (scopes are the policy's business)."""
    return pb.VerifyTokenRequest(token=token, audience=local.audience)


def accept_remote(
    local: LocalVerification, token: str, response: pb.VerifyTokenResponse
) -> Principal:
    """Turn a ``VerifyToken`` answer into the principal, cached until the token expires.

    Raises:
        AuthError: ``active`` is false (the subclass named by ``reason``; TokenInvalid
            for a reason this version does not know), or the answer is incomplete, or
            the token was revoked here meanwhile.
    """
    if not response.active:  # (scopes are the policy's: none are sent, none can be missing)
        raise _REMOTE_ERRORS.get(response.reason, TokenInvalid)()
    if not (response.subject and response.token_id and response.expires_at):
        raise TokenInvalid()
    principal = Principal(
        subject=response.subject,
        scopes=frozenset(response.scopes),
        token_id=response.token_id,
        issuer=response.issuer,
        audience=tuple(response.audience),
        client_id=response.client_id,
        issued_at=response.issued_at,
        expires_at=response.expires_at,
        claims=MappingProxyType(_claims(response)),
    )
    return local.remember(token, principal)


def _claims(response: pb.VerifyTokenResponse) -> dict[str, Any]:
    claims = json_format.MessageToDict(response.claims)
    return {name: _integral(value) for name, value in claims.items()}


def _integral(value: Any) -> Any:
    # google.protobuf.Struct carries every number as a double; JWT NumericDates and
    # other whole numbers were integers in the token, so give them back as int.
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    return value
