"""The authentication flow of one call, written once for sync and asyncio.

:func:`auth_flow` is a generator that does every check that needs no I/O and *yields*
the token when (and only when) it needs a verification that may block: a cache miss,
which costs a signature check, or in remote mode a ``VerifyToken`` RPC. The sync and the
asyncio interceptors drive it; they differ only in how they wait for that one answer::

    flow = auth_flow(method, metadata, policy, verifier)
    try:
        token = next(flow)
        principal = verifier.verify(token)            # or: await verifier.verify(token)
        flow.send(principal)
    except StopIteration as done:
        principal = done.value                        # None for public methods

Errors are raised as :class:`~bearer_grpc.core.errors.AuthError` subclasses.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Generator, Iterable
from typing import Protocol

from bearer_grpc.core.cache import DEFAULT_CACHE_SIZE, TokenCache
from bearer_grpc.core.clock import Clock
from bearer_grpc.core.errors import TokenRevoked, VerifierUnavailable
from bearer_grpc.core.header import bearer_token
from bearer_grpc.core.keys import PublicKeySet
from bearer_grpc.core.policy import Policy
from bearer_grpc.core.tokens import DEFAULT_LEEWAY, Principal, TokenVerifier

Metadata = Iterable[tuple[str, str | bytes]]


class CachedLookup(Protocol):
    """What the flow asks a verifier before yielding: a cache hit, checked for revocation."""

    def lookup(self, token: str) -> Principal | None:
        """The principal of an already verified, unexpired, unrevoked token, or None.

        Raises:
            TokenRevoked: The cached token has been revoked since.
        """
        ...


def auth_flow(
    method: str, metadata: Metadata | None, policy: Policy, verifier: CachedLookup
) -> Generator[str, Principal, Principal | None]:
    """Authenticate and authorise one call (see the module docstring for the protocol).

    Args:
        method: Full method name, ``/pkg.Service/Method``.
        metadata: The call's invocation metadata.
        policy: Which methods need what.
        verifier: Answers cache lookups; the driver verifies what the flow yields.

    Returns:
        The caller, or None for a public method.

    Raises:
        AuthError: Missing or bad token, or missing scopes.
    """
    rule = policy.rule_for(method)
    if rule.public:
        return None
    token = bearer_token(metadata)
    principal = verifier.lookup(token)
    if principal is None:
        principal = yield token
    return TokenVerifier.authorize(principal, rule.scopes)


class RevocationSet:
    """Revoked token ids with their expiry, and the sequence they were read up to.

    Filled from ``WatchRevocations`` events (or the store); consulted on every call by a
    dict lookup. Thread-safe for one writer and many readers.
    """

    def __init__(self) -> None:
        self._revoked: dict[str, int] = {}
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
            is_revoked=self.revocations.__contains__,
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
        if principal is not None and principal.token_id in self.revocations:
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
