"""OAuth 2.0 error answers, and the one table from the service's errors to them.

The answers are those of RFC 6749 §5.2, RFC 7009, RFC 7662 and RFC 8707.

No other module of the HTTP face chooses an ``error`` code or a status. Every answer is a
JSON object ``{"error": ..., "error_description": ...}`` whose description is the error's
terse public message: it never repeats a token, a secret or a password.
"""

from __future__ import annotations

import json
import math
from typing import ClassVar, Final, Literal

from bearer_grpc.core.errors import (
    AudienceNotAllowed,
    BearerGrpcError,
    Forbidden,
    InvalidGrant,
    InvalidRequest,
    Overloaded,
    ScopeNotAllowed,
    ServiceError,
    Unavailable,
)

RETRY_AFTER_SECONDS: Final = 1
"""``Retry-After`` of a 503 answer (the store is busy)."""

Role = Literal["client", "grant"]
"""What a credential is in the request that failed: the client's own (client
credentials, and every authentication at the revocation and introspection endpoints),
or a grant the client presents on someone's behalf (password, refresh token)."""


class OAuthError(ServiceError):
    """An OAuth 2.0 error answer.

    Args:
        error: The ``error`` code (``invalid_request``, ``invalid_client``, ...).
        message: Terse public ``error_description``; never secret material.
        status: HTTP status. Default 400; ``invalid_client`` is 401.
        retry_after: Seconds for ``Retry-After`` (429 and 503 answers).
    """

    default_message: ClassVar[str] = "invalid request"

    def __init__(
        self,
        error: str,
        message: str | None = None,
        *,
        status: int = 400,
        retry_after: float = RETRY_AFTER_SECONDS,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.status = status
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"OAuthError({self.error!r}, {self.message!r}, status={self.status})"

    @property
    def headers(self) -> dict[str, str]:
        """Headers of the answer: a Basic challenge, or ``Retry-After``.

        A Basic challenge for ``invalid_client`` (RFC 6749 §5.2 requires one when the
        client used the Authorization header; it is sent always, naming the method the
        client may use, and carries the error, since some clients read a 401's challenge
        instead of its body), ``Retry-After`` for 429 and 503.
        """
        if self.status == 401:
            challenge = (
                f'Basic realm="bearer-grpc", charset="UTF-8", error="{self.error}", '
                f'error_description="{self.message}"'
            )
            return {"WWW-Authenticate": challenge}
        if self.status in (429, 503):
            return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}
        return {}

    def body(self) -> bytes:
        """The JSON body."""
        answer = {"error": self.error, "error_description": self.message}
        return json.dumps(answer, separators=(",", ":")).encode()


def invalid_request(message: str) -> OAuthError:
    """``invalid_request`` (400) with ``message``."""
    return OAuthError("invalid_request", message)


def invalid_client(message: str = "client authentication failed") -> OAuthError:
    """``invalid_client`` (401 with a Basic challenge)."""
    return OAuthError("invalid_client", message, status=401)


def unauthorized_client(message: str, *, status: int = 400) -> OAuthError:
    """``unauthorized_client``: an authenticated client may not do this."""
    return OAuthError("unauthorized_client", message, status=status)


def to_oauth(error: BearerGrpcError, *, role: Role) -> OAuthError:
    """The OAuth answer for an error the rules raised.

    Args:
        error: Raised by :class:`~bearer_grpc.service.authority.TokenAuthority` (or
            already an :class:`OAuthError`, returned as is).
        role: What the rejected credential was (see :data:`Role`): credentials that
            are not accepted are ``invalid_client`` for the client's own, and
            ``invalid_grant`` for a password or refresh token.
    """
    if isinstance(error, OAuthError):
        return error
    if isinstance(error, InvalidGrant):
        return invalid_client() if role == "client" else OAuthError("invalid_grant", error.message)
    if isinstance(error, ScopeNotAllowed):
        return OAuthError("invalid_scope", error.message)
    if isinstance(error, AudienceNotAllowed):
        return OAuthError("invalid_target", error.message)
    if isinstance(error, Forbidden):
        return unauthorized_client(error.message)
    if isinstance(error, InvalidRequest):
        return invalid_request(error.message)
    if isinstance(error, Overloaded):  # throttled sign-ins, a full password pool
        return OAuthError(
            "temporarily_unavailable", error.message, status=429, retry_after=error.retry_after
        )
    if isinstance(error, Unavailable):
        return OAuthError("temporarily_unavailable", error.message, status=503)
    return OAuthError("server_error", "internal error", status=500)
