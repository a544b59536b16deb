"""The one exception tree of bearer_grpc: every error it raises on purpose.

::

    BearerGrpcError
    ├── AuthError                 a call's credentials are not good enough
    │   │                         (``reason`` = ErrorInfo.reason)
    │   ├── TokenMissing          no authorization entry
    │   ├── TokenMalformed        not `Bearer <b64token>`, several entries, not a compact JWS
    │   ├── TokenInvalid          signature, key, claims, audience, issuer or typ wrong
    │   ├── TokenExpired          exp passed (beyond leeway)
    │   ├── TokenRevoked          its jti was revoked
    │   ├── TokenBindingMismatch  certificate-bound token (RFC 8705) without its
    │   │                         certificate, or a binding the method requires is missing
    │   ├── InsufficientScope     valid token, scopes not enough
    │   └── VerifierUnavailable   the verification backend cannot answer (fail closed)
    ├── ServiceError              a TokenService request cannot be served
    │   ├── InvalidRequest        a field is missing, empty, oversized or malformed
    │   ├── InvalidGrant          credentials or refresh token not accepted (one message for all)
    │   ├── Forbidden             a known caller may not do this
    │   │   ├── ScopeNotAllowed   a requested scope is not the caller's
    │   │   └── AudienceNotAllowed  a requested audience is not the caller's (or it has none)
    │   ├── NotFound              the named object does not exist
    │   ├── Conflict              the named object exists already
    │   ├── Overloaded            too many requests of a costly kind at once; retry later
    │   │   │                     (``retry_after`` = RetryInfo)
    │   │   └── LoginThrottled    too many failed sign-ins for the account or the peer
    │   ├── Incompatible          the caller could not apply what would be sent (upgrade it)
    │   ├── Unavailable           the store cannot answer; nothing was written
    │   └── OAuthError            an OAuth 2.0 error answer of the HTTP face (``error`` code,
    │                             HTTP status; bearer_grpc.service.http)
    ├── KeyMaterialError          a key, key set or key-encryption key is unusable
    │                             (also a ValueError)
    ├── PolicyError               a policy is malformed, or strict mode finds a method
    │                             without a rule (also a ValueError)
    ├── NoPrincipal               current_principal() outside an authenticated call
    │                             (also a LookupError)
    ├── StoreError                the store failed (bearer_grpc.store)
    │   ├── StoreUnavailable      cannot be reached or is locked; nothing was written
    │   └── AlreadyExists         a row with that key exists already
    ├── UnusableAnswer            the TokenService answered OK without a usable token
    ├── FetchError                an identity provider's endpoint answered unusably
    │                             (status, size, not JSON, another issuer)
    └── TokenRequestError         no access token could be had; also a ``grpc.RpcError``
                                  (``grpc.aio.AioRpcError`` in bearer_grpc.aio), so code
                                  handling failed calls handles it too

A second base class appears only where callers already catch that one: ``grpc.RpcError``
for a client call that could not get a token, ``ValueError`` for bad configuration,
``LookupError`` for a missing principal. Every class carries a terse public ``message``
that never contains token, secret or password material; the details stay in the
chained cause. The mapping of :class:`AuthError` and :class:`ServiceError` to gRPC
status codes lives in one table at the edge (``bearer_grpc._status``); any other error
reaching a TokenService handler is answered INTERNAL.
"""

from __future__ import annotations

from typing import ClassVar


class BearerGrpcError(Exception):
    """Base of every error bearer_grpc raises on purpose.

    Args:
        message: Terse public message; overrides the class default. Must not contain
            secrets: it is sent to callers.
    """

    default_message: ClassVar[str] = "error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class AuthError(BearerGrpcError):
    """A call's credentials are not good enough. ``reason`` is the ErrorInfo reason."""

    reason: ClassVar[str] = "TOKEN_INVALID"


class TokenMissing(AuthError):
    """The call carries no ``authorization`` metadata."""

    reason = "TOKEN_MISSING"
    default_message = "missing bearer token"


class TokenMalformed(AuthError):
    """The credential is not a single ``Bearer <b64token>`` holding a compact JWS."""

    reason = "TOKEN_MALFORMED"
    default_message = "malformed bearer token"


class TokenInvalid(AuthError):
    """Signature, key, claims, audience, issuer or type of the token are wrong."""

    reason = "TOKEN_INVALID"
    default_message = "invalid token"


class TokenExpired(AuthError):
    """The token's ``exp`` has passed, beyond the allowed leeway."""

    reason = "TOKEN_EXPIRED"
    default_message = "token expired"


class TokenRevoked(AuthError):
    """The token's ``jti`` has been revoked."""

    reason = "TOKEN_REVOKED"
    default_message = "token revoked"


class TokenBindingMismatch(AuthError):
    """The token's sender constraint does not hold for this call.

    Raised when a certificate-bound token (RFC 8705 §3: ``cnf`` with ``x5t#S256``)
    arrives without the client certificate it is bound to (plaintext, another
    certificate, another channel); when its ``cnf`` is malformed or names a constraint
    this server cannot check (``jkt``, DPoP); and when the method requires a bound token
    and the token is not bound.
    """

    reason = "TOKEN_BINDING_MISMATCH"
    default_message = "token bound to another certificate"


class InsufficientScope(AuthError):
    """The token is valid but lacks scopes the call needs.

    Args:
        required_scopes: The scopes the call needs (all of them, not only the missing ones).
    """

    reason = "INSUFFICIENT_SCOPE"
    default_message = "insufficient scope"

    def __init__(self, required_scopes: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.required_scopes = required_scopes


class VerifierUnavailable(AuthError):
    """The verification backend cannot answer; the call is refused (fail closed)."""

    reason = "VERIFIER_UNAVAILABLE"
    default_message = "token verification unavailable"


class ServiceError(BearerGrpcError):
    """A TokenService request cannot be served."""


class InvalidRequest(ServiceError):
    """A request field is missing, empty, oversized or malformed."""

    default_message = "invalid request"


class InvalidGrant(ServiceError):
    """Credentials or refresh token not accepted.

    One message for every cause (unknown client, wrong secret, unknown user, wrong
    password, reused refresh token), so callers learn nothing about which it was.
    """

    default_message = "invalid credentials"


class Forbidden(ServiceError):
    """A known caller is not allowed to do this."""

    default_message = "permission denied"


class ScopeNotAllowed(Forbidden):
    """A requested scope is not among the caller's (OAuth ``invalid_scope``)."""

    default_message = "scope not allowed"


class AudienceNotAllowed(Forbidden):
    """A requested audience is not among the caller's, or it has none (``invalid_target``)."""

    default_message = "audience not allowed"


class NotFound(ServiceError):
    """The named object does not exist."""

    default_message = "not found"


class Conflict(ServiceError):
    """The named object exists already."""

    default_message = "already exists"


class Overloaded(ServiceError):
    """Too many costly requests (password checks) are in progress; retry later.

    Args:
        message: Terse public message (the class default when None).
        retry_after: Seconds after which a retry may succeed (sent as ``RetryInfo``).
    """

    default_message = "too many requests; retry later"

    def __init__(self, message: str | None = None, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LoginThrottled(Overloaded):
    """Too many failed sign-ins for this account or from this peer.

    No attempt is checked before ``retry_after`` seconds (the delay grows with the
    failures, and is bounded: never a permanent lockout).
    """

    default_message = "too many failed sign-ins; retry later"


class Incompatible(ServiceError):
    """The caller could not apply what the service would send it: refused, not served half.

    Typically an older release, say a verifier that does not declare every revocation
    kind. Upgrading the caller fixes it.
    """

    default_message = "client too old for this service"


class Unavailable(ServiceError):
    """The store cannot answer; nothing was written. Retrying later may succeed."""

    default_message = "service unavailable"


class KeyMaterialError(BearerGrpcError, ValueError):
    """Key material, a key set or a key-encryption key is unusable.

    The message names the rule that failed, never the key material.
    """

    default_message = "unusable key material"


class PolicyError(BearerGrpcError, ValueError):
    """A policy is contradictory or malformed, or (strict mode) does not cover a method."""

    default_message = "invalid policy"


class NoPrincipal(BearerGrpcError, LookupError):
    """:func:`~bearer_grpc.current_principal` was called outside an authenticated call.

    That is: not inside a handler behind a ``BearerServerInterceptor``, or inside one for
    a public method (public methods have no verified caller, even when a token is sent).
    """

    default_message = "called outside an authenticated call"


class StoreError(BearerGrpcError):
    """The token service's store failed (re-exported by :mod:`bearer_grpc.store`)."""

    default_message = "store error"


class StoreUnavailable(StoreError):
    """The store cannot be reached or is locked; nothing was written. Retry later."""

    default_message = "store unavailable"


class AlreadyExists(StoreError):
    """A row with that key exists already."""

    default_message = "already exists"


class UnusableAnswer(BearerGrpcError):
    """The token service answered OK without a usable bearer token."""

    default_message = "the answer holds no usable bearer token"


class FetchError(BearerGrpcError):
    """An identity provider's endpoint (discovery, JWKS, introspection) answered unusably.

    For example a status other than 200, too many bytes, not a JSON object, another issuer.
    The message names the rule, never the answer's content.
    """

    default_message = "unusable answer from the provider"
