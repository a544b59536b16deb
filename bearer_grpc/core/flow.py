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
the whole token; a hit skips it, and is still exactly what :func:`bearer_token` decides:
the single ``authorization`` entry is found and bounded as there, and only a value that
is literally ``"Bearer " + key`` for a key of the cache is a hit. Cache keys are
b64tokens (:meth:`TokenCache.put` stores nothing else), so for such a value the full
parse returns that very key. Anything else (another spelling of the scheme, two spaces,
a trailing space, ...) goes through :func:`bearer_token` and is looked up as what it
yields, never as a normalised form of something cached.
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
from bearer_grpc.core.header import MAX_AUTHORIZATION_BYTES, bearer_token
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
    candidate = _cache_candidate(metadata)
    if candidate is not None:
        principal = verifier.lookup(candidate)
        if principal is not None:
            return TokenVerifier.authorize(principal, rule.scopes) if rule.scopes else principal
    token = bearer_token(metadata)
    if token != candidate:
        principal = verifier.lookup(token)
        if principal is not None:
            return TokenVerifier.authorize(principal, rule.scopes) if rule.scopes else principal
    return Pending(token, rule.scopes)


def _cache_candidate(metadata: Metadata | None) -> str | None:
    """What follows ``"Bearer "`` in the single, bounded ``authorization`` entry, if any.

    The same entry rules as :func:`bearer_token` (one entry, a str, at most
    ``MAX_AUTHORIZATION_BYTES``); None whenever they fail, so that it decides.
    """
    found: str | bytes | None = None
    count = 0
    for key, value in metadata or ():
        if key == "authorization" or (len(key) == 13 and key.lower() == "authorization"):
            count += 1
            found = value
    if (
        count != 1
        or not isinstance(found, str)
        or len(found) > MAX_AUTHORIZATION_BYTES
        or not found.startswith(_SCHEME)
    ):
        return None
    return found[len(_SCHEME) :]


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
