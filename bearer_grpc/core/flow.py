"""The authentication flow of one call, written once for sync and asyncio.

:func:`admit` does every check that needs no I/O: the method's rule, the single
``authorization`` entry, a cache lookup (expiry and revocation re-checked), the scopes.
It returns the caller (a cache hit), or a :class:`Pending` step when (and only when) a
verification that may block is needed: a cache miss, which costs a signature check, or
in remote mode a ``VerifyToken`` RPC. The sync and the asyncio interceptors drive it;
they differ only in how they wait for that one answer::

    step = admit(rule, metadata, verifier)
    if isinstance(step, Pending):
        principal = step.finish(verifier.verify(step.token))   # or: await verifier.verify
    else:
        principal = step

Errors are raised as :class:`~bearer_grpc.core.errors.AuthError` subclasses.

The cache-hit shortcut. Parsing the ``Bearer`` value costs a regular expression over
the whole token; a hit skips it, and is still exactly what
:func:`~bearer_grpc.core.header.bearer_token` decides:
the single ``authorization`` entry is found and bounded by the same
:func:`~bearer_grpc.core.header.authorization_value`, and only a value that is
literally ``"Bearer " + token`` for a token in the cache is a hit. Cached tokens are
b64tokens (:meth:`TokenCache.put` stores nothing else), so for such a value
:func:`~bearer_grpc.core.header.parse_bearer` returns that very token. Anything else
(another spelling of the scheme, two spaces, a trailing space, ...) is parsed and looked
up as what the parse yields, never as a normalised form of something cached.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Container, Iterable
from typing import Protocol

from bearer_grpc.core.cache import DEFAULT_CACHE_SIZE, TokenCache
from bearer_grpc.core.clock import Clock
from bearer_grpc.core.errors import TokenRevoked, VerifierUnavailable
from bearer_grpc.core.header import authorization_value, parse_bearer
from bearer_grpc.core.keys import PublicKeySet
from bearer_grpc.core.policy import Rule
from bearer_grpc.core.tokens import DEFAULT_LEEWAY, Principal, TokenVerifier

Metadata = Iterable[tuple[str, str | bytes]]

_SCHEME = "Bearer "


class CachedLookup(Protocol):
    """What the flow asks a verifier before yielding: a cache hit, checked for revocation."""

    def lookup(self, token: str) -> Principal | None:
        """The principal of an already verified, unexpired, unrevoked token, or None.

        Raises:
            TokenRevoked: The cached token has been revoked since.
        """
        ...


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


def admit(rule: Rule, metadata: Metadata | None, verifier: CachedLookup) -> Principal | Pending:
    """Authenticate and authorise one call of a method that is not public, without I/O.

    Args:
        rule: The method's rule (``policy.rule_for(method)``; not public).
        metadata: The call's invocation metadata.
        verifier: Answers cache lookups; the driver verifies a :class:`Pending` token.

    Returns:
        The caller (a cache hit with the required scopes), or the verification to do.

    Raises:
        AuthError: Missing or malformed token, revoked (cached) token, or missing scopes.
    """
    value = authorization_value(metadata)
    candidate = _cache_candidate(value)
    if candidate is not None:
        principal = verifier.lookup(candidate)
        if principal is not None:
            return TokenVerifier.authorize(principal, rule.scopes) if rule.scopes else principal
    token = parse_bearer(value)
    if token != candidate:
        principal = verifier.lookup(token)
        if principal is not None:
            return TokenVerifier.authorize(principal, rule.scopes) if rule.scopes else principal
    return Pending(token, rule.scopes)


def _cache_candidate(value: str) -> str | None:
    """What follows ``"Bearer "`` in the ``authorization`` value, if it starts so.

    Only worth a cache lookup: a hit is a cached b64token, which is what
    :func:`parse_bearer` would return for this value; a miss decides nothing.
    """
    return value[len(_SCHEME) :] if value.startswith(_SCHEME) else None


class RevocationSet:
    """Revoked token ids with their expiry, and the sequence they were read up to.

    Filled from ``WatchRevocations`` events (or the store); consulted on every call by a
    dict lookup. Thread-safe for one writer and many readers.
    """

    def __init__(self) -> None:
        self._revoked: dict[str, int] = {}
        self.ids: Container[str] = self._revoked
        """Read-only view for the per-call check (``jti in ids``): the same dict, updated in
        place, without the cost of a Python ``__contains__`` call."""
        self.sequence = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._revoked)

    def __contains__(self, jti: object) -> bool:
        return jti in self._revoked

    def add(self, jti: str, expires_at: int, sequence: int = 0) -> None:
        """Record a revocation (and advance :attr:`sequence` to ``sequence``)."""
        with self._lock:
            self._revoked[jti] = expires_at
            self.sequence = max(self.sequence, sequence)

    def restart(self) -> None:
        """Resume from sequence 0 (the source's log restarted); known jtis are kept."""
        with self._lock:
            self.sequence = 0

    def prune(self, horizon: float) -> int:
        """Forget revocations of tokens that expired before ``horizon`` (now - leeway)."""
        with self._lock:
            stale = [jti for jti, exp in self._revoked.items() if exp < horizon]
            for jti in stale:
                del self._revoked[jti]
            return len(stale)


class LocalVerification:
    """Verifies tokens locally against keys held in memory, with a cache.

    The shared state of every local verifier, sync or asyncio: the trusted keys (replaced
    whole when a new JWKS arrives), the revocation set and the verified-token cache.

    Args:
        issuer: The exact ``iss`` required (None: learnt with the first key set).
        audience: This service's audience.
        clock: Wall-clock time.
        keys: Initial trusted keys (None: none yet; verification is unavailable).
        leeway: Clock skew tolerated, seconds.
        cache_size: Verified tokens kept (0 disables the cache).
    """

    def __init__(
        self,
        *,
        issuer: str | None,
        audience: str,
        clock: Clock,
        keys: PublicKeySet | None = None,
        leeway: int = DEFAULT_LEEWAY,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        self.leeway = leeway
        self.revocations = RevocationSet()
        self.cache = TokenCache(cache_size, leeway=leeway)
        self._verifier: TokenVerifier | None = None
        if keys is not None:
            self.set_keys(keys)

    @property
    def keys(self) -> PublicKeySet | None:
        """The trusted keys, or None before the first key set arrived."""
        return self._verifier.keys if self._verifier is not None else None

    def set_keys(self, keys: PublicKeySet, *, issuer: str | None = None) -> None:
        """Trust exactly ``keys`` (and ``issuer``, if given) from now on.

        The cache is kept when no key was dropped and the issuer is unchanged.

        Raises:
            ValueError: No issuer was ever given.
        """
        old_keys, old_issuer = self.keys, self.issuer
        new_issuer = issuer if issuer is not None else old_issuer
        if not new_issuer:
            raise ValueError("an issuer is required")
        verifier = TokenVerifier(
            keys,
            issuer=new_issuer,
            clock=self.clock,
            leeway=self.leeway,
            is_revoked=self.revocations.ids.__contains__,
        )
        self._verifier, self.issuer = verifier, new_issuer  # one swap: never keys without issuer
        if old_keys is not None and (new_issuer != old_issuer or not set(old_keys) <= set(keys)):
            self.cache.clear()

    def remember(self, token: str, principal: Principal) -> Principal:
        """Cache a principal verified elsewhere (remote mode), unless it is revoked.

        Raises:
            TokenRevoked: Its ``jti`` is in the revocation set.
        """
        if principal.token_id in self.revocations:
            raise TokenRevoked()
        self.cache.put(token, principal)
        return principal

    def lookup(self, token: str) -> Principal | None:
        """A cache hit, re-checked against revocations (see :class:`CachedLookup`)."""
        principal = self.cache.get(token, self.clock())
        if principal is not None and principal.token_id in self.revocations.ids:
            raise TokenRevoked()
        return principal

    def knows_kid_of(self, token: str) -> bool:
        """Whether the token's ``kid`` is one of the trusted keys (cheap header peek)."""
        keys = self.keys
        if keys is None:
            return False
        kid = _peek_kid(token)
        return kid is not None and kid in keys

    def verify(self, token: str) -> Principal:
        """Fully verify ``token`` (signature, claims, revocation) and cache the result.

        Raises:
            VerifierUnavailable: No key set has been obtained yet.
            AuthError: The token is not valid.
        """
        verifier = self._verifier
        if verifier is None:
            raise VerifierUnavailable()
        principal = verifier.authenticate(token, audience=self.audience)
        if self._verifier is verifier:  # not if the keys changed meanwhile (set_keys)
            self.cache.put(token, principal)
        return principal


def _peek_kid(token: str) -> str | None:
    header, _, _ = token.partition(".")
    if not header or len(header) > 1024:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, RecursionError):
        return None
    kid = value.get("kid") if isinstance(value, dict) else None
    return kid if isinstance(kid, str) else None
