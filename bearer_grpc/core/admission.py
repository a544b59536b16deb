"""The admission of one call, written once for sync and asyncio.

:func:`admit` does every check that needs no I/O: the method's rule, the single
``authorization`` entry, a cache lookup, the scopes. It returns the caller (a cache
hit), or a :class:`Pending` verification when (and only when) one that may block is
needed: a cache miss, which costs a signature check, or a remote ``VerifyToken``. The
sync and the asyncio interceptors drive it; they differ only in how they wait for that
one answer::

    admission = admit(rule, metadata, verifier.lookup)
    if isinstance(admission, Pending):
        principal = admission.finish(verifier.verify(admission.token))  # or: await
    else:
        principal = admission

Errors are raised as :class:`~bearer_grpc.core.errors.AuthError` subclasses. A cache hit
skips the RFC 6750 parse of the value and is still exactly what the full parse decides:
docs/design/admission.md gives the argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bearer_grpc.core.header import authorization_value, parse_bearer
from bearer_grpc.core.policy import Rule
from bearer_grpc.core.tokens import Principal, TokenVerifier

Metadata = Iterable[tuple[str, str | bytes]]

_SCHEME = "Bearer "


Lookup = Callable[[str], Principal | None]
"""A verifier's fast path: the principal of an already verified, unexpired, unrevoked
token, or None (then the token is verified). It may raise an ``AuthError`` (a cached
token revoked since)."""


class Pending:
    """A call whose token missed the cache: verify :attr:`token`, then :meth:`finish`.

    Args:
        token: The bearer token to verify (hidden from ``repr``).
        scopes: Scopes the method requires.
    """

    __slots__ = ("scopes", "token")

    def __init__(self, token: str, scopes: tuple[str, ...]) -> None:
        self.token = token
        self.scopes = scopes

    def __repr__(self) -> str:
        return "Pending(token=<hidden>)"

    def finish(self, principal: Principal) -> Principal:
        """The verified caller, once it is known to carry the method's scopes.

        Raises:
            InsufficientScope: The method needs scopes the token lacks.
        """
        return TokenVerifier.authorize(principal, self.scopes)


def admit(
    rule: Rule, metadata: Metadata | None, lookup: Lookup, *, shortcut: bool = True
) -> Principal | Pending:
    """Authenticate and authorise one call of a method that is not public, without I/O.

    Args:
        rule: The method's rule (``policy.rule_for(method)``; not public).
        metadata: The call's invocation metadata.
        lookup: The verifier's fast path; the driver verifies a :class:`Pending` token.
        shortcut: Ask ``lookup`` about the value's tail before parsing it. Only for a
            lookup that finds nothing but b64tokens verified as exactly that string
            (a :class:`~bearer_grpc.core.cache.TokenCache`); any other lookup is asked
            only about the parsed token.

    Returns:
        The caller (a cache hit with the required scopes), or the verification to do.

    Raises:
        AuthError: Missing or malformed token, revoked (cached) token, or missing scopes.
    """
    value = authorization_value(metadata)
    candidate = _cache_candidate(value) if shortcut else None
    if candidate is not None:
        principal = lookup(candidate)
        if principal is not None:
            return TokenVerifier.authorize(principal, rule.scopes) if rule.scopes else principal
    token = parse_bearer(value)
    if token != candidate:
        principal = lookup(token)
        if principal is not None:
            return TokenVerifier.authorize(principal, rule.scopes) if rule.scopes else principal
    return Pending(token, rule.scopes)


def _cache_candidate(value: str) -> str | None:
    """What follows ``"Bearer "`` in the ``authorization`` value, if it starts so.

    Only worth a lookup: a hit is a verified b64token, which is what :func:`parse_bearer`
    would return for this value; a miss decides nothing.
    """
    return value[len(_SCHEME) :] if value.startswith(_SCHEME) else None
