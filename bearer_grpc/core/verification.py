"""What a local verifier holds in memory, written once for every flavour and the service.

- :class:`TrustedKeys`: a :class:`~bearer_grpc.core.tokens.TokenVerifier` over a key set
  and the cache of the tokens it verified, replaced together. The one rule for a key
  change: a key that is no longer trusted takes its cache with it.
- :class:`RevocationSet`: what is revoked (token ids, refresh families, subjects up to a
  time), and the one rule that says whether a principal is revoked: consulted on every
  call, a dict lookup while only token ids are revoked.
- :class:`LocalVerification`: the keys, the revocations and the cache of one verifier,
  and the per-message re-check of long-lived streams.
- :func:`peek_kid`, :func:`peek_issuer`: the ``kid`` a token's header names and the
  ``iss`` its claims name, without verifying anything.
"""

from __future__ import annotations

import base64
import enum
import json
import threading
from collections.abc import Container
from dataclasses import dataclass
from typing import Final

from bearer_grpc.core.cache import DEFAULT_CACHE_SIZE, TokenCache
from bearer_grpc.core.clock import Clock
from bearer_grpc.core.errors import (
    AuthError,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
    VerifierUnavailable,
)
from bearer_grpc.core.jws import parse_compact, unverified_claims
from bearer_grpc.core.keys import PublicKeySet
from bearer_grpc.core.profiles import RFC9068, TokenProfile
from bearer_grpc.core.tokens import (
    DEFAULT_LEEWAY,
    MAX_TOKEN_BYTES,
    Principal,
    TokenVerifier,
    is_expired,
)

_MAX_HEADER_PEEK = 1024

SESSION_CLAIM: Final = "sid"
"""The claim naming the refresh family (the login session) an access token was issued
with; revoking the family revokes every token that names it."""


class RevocationKind(enum.StrEnum):
    """What one entry of a revocation log revokes."""

    TOKEN = "token"  # noqa: S105 (a kind, not a secret)
    """One access token, by its ``jti``."""
    FAMILY = "family"
    """Every access token whose ``sid`` claim names the refresh family."""
    SUBJECT = "subject"
    """Every token of a subject (``sub``) issued at or before a time (its ``iat``)."""


@dataclass(frozen=True, slots=True)
class TrustedKeys:
    """A verifier and the cache of the tokens it verified, swapped as one value.

    A verification that started before the keys changed puts its result into the cache
    of its own pair, which is no longer consulted: nothing verified with a key that has
    gone can be found afterwards.

    Attributes:
        verifier: Verifies tokens against exactly these keys and this issuer.
        cache: The principals this verifier accepted.
    """

    verifier: TokenVerifier
    cache: TokenCache

    def replaced_by(self, verifier: TokenVerifier) -> TrustedKeys:
        """The pair for a new key set, keeping the cache while it still applies.

        The same cache when the issuer is unchanged and every key still trusted, else a new
        empty one (hit and miss counts carry over).
        """
        old = self.verifier
        if old.issuer == verifier.issuer and set(old.keys) <= set(verifier.keys):
            return TrustedKeys(verifier, self.cache)
        cache = TokenCache(self.cache.max_size, leeway=self.cache.leeway)
        cache.hits, cache.misses = self.cache.hits, self.cache.misses
        return TrustedKeys(verifier, cache)


class RevocationSet:
    """What is revoked, the sequence it was read up to, and the one rule of revocation.

    Filled from ``WatchRevocations`` events (or the store); consulted on every call by
    :meth:`refuses`: a token is revoked when its ``jti`` is, when the refresh family its
    ``sid`` claim names is, or when its subject was revoked at or after its ``iat``.
    While only token ids are revoked that is one dict lookup. Thread-safe for one writer
    and many readers.
    """

    def __init__(self) -> None:
        self._revoked: dict[str, int] = {}
        self.ids: Container[str] = self._revoked
        """Read-only view of the revoked token ids: the same dict, updated in place."""
        self._families: dict[str, int] = {}
        self._subjects: dict[str, tuple[int, int]] = {}  # subject: (not_before, expires_at)
        self.sequence = 0
        self.failed = False
        """Set for good once an entry of a kind this version does not know arrived: the
        set can no longer be complete, so every check must fail closed."""
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._revoked) + len(self._families) + len(self._subjects)

    def __contains__(self, jti: object) -> bool:
        return jti in self._revoked

    def add(self, jti: str, expires_at: int, sequence: int = 0) -> None:
        """Record a revoked token id (and advance :attr:`sequence` to ``sequence``)."""
        self.apply(RevocationKind.TOKEN, jti, expires_at=expires_at, sequence=sequence)

    def apply(
        self, kind: str, key: str, *, expires_at: int, not_before: int = 0, sequence: int = 0
    ) -> bool:
        """Record one entry of a revocation log (and advance :attr:`sequence`).

        Args:
            kind: A :class:`RevocationKind` value.
            key: The token id, family id or subject the entry revokes.
            expires_at: When the last token it revokes expires.
            not_before: For a subject: tokens issued at or before this time are revoked.
            sequence: The entry's position in the log.

        Returns:
            False for a kind this version does not know: the set has then :attr:`failed`.
        """
        with self._lock:
            if kind == RevocationKind.TOKEN:
                self._revoked[key] = expires_at
            elif kind == RevocationKind.FAMILY:
                self._families[key] = max(expires_at, self._families.get(key, 0))
            elif kind == RevocationKind.SUBJECT:
                known_before, known_expiry = self._subjects.get(key, (0, 0))
                cut = (max(not_before, known_before), max(expires_at, known_expiry))
                self._subjects[key] = cut
            else:
                self.fail_closed()
                return False
            self.sequence = max(self.sequence, sequence)
            return True

    def fail_closed(self) -> None:
        """Stop trusting the set for good (an entry could not be applied)."""
        self.failed = True

    def refuses(self, principal: Principal) -> bool:
        """Whether ``principal``'s token is revoked (see the class docstring)."""
        if principal.token_id in self._revoked:
            return True
        if not (self._families or self._subjects):
            return False
        family = principal.claims.get(SESSION_CLAIM)
        if isinstance(family, str) and family in self._families:
            return True
        cut = self._subjects.get(principal.subject)
        return cut is not None and principal.issued_at <= cut[0]

    def restart(self) -> None:
        """Resume from sequence 0 (the source's log restarted); what is known is kept."""
        with self._lock:
            self.sequence = 0

    def prune(self, horizon: float) -> int:
        """Forget what revokes only tokens that expired before ``horizon`` (now - leeway).

        In place: :attr:`ids` stays the same dict.
        """
        with self._lock:
            tokens = [k for k, exp in self._revoked.items() if exp < horizon]
            families = [k for k, exp in self._families.items() if exp < horizon]
            subjects = [k for k, cut in self._subjects.items() if cut[1] < horizon]
            for jti in tokens:
                del self._revoked[jti]
            for family in families:
                del self._families[family]
            for subject in subjects:
                del self._subjects[subject]
            return len(tokens) + len(families) + len(subjects)


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
        profile: What the issuer's tokens look like (default: RFC 9068).

    Raises:
        ValueError: The profile refuses the audience.
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
        profile: TokenProfile = RFC9068,
    ) -> None:
        self.issuer = issuer
        self.audience = profile.check_audience(audience)
        self.profile = profile
        self.clock = clock
        self.leeway = leeway
        self.revocations = RevocationSet()
        self._cache_size = cache_size
        self._trusted: TrustedKeys | None = None
        self._empty = TokenCache(cache_size, leeway=leeway)
        if keys is not None:
            self.set_keys(keys)

    @property
    def keys(self) -> PublicKeySet | None:
        """The trusted keys, or None before the first key set arrived."""
        trusted = self._trusted
        return trusted.verifier.keys if trusted is not None else None

    @property
    def cache(self) -> TokenCache:
        """The cache of the tokens verified with the current keys."""
        trusted = self._trusted
        return trusted.cache if trusted is not None else self._empty

    def set_keys(self, keys: PublicKeySet, *, issuer: str | None = None) -> None:
        """Trust exactly ``keys`` (and ``issuer``, if given) from now on.

        The cache is kept when no key was dropped and the issuer is unchanged
        (:meth:`TrustedKeys.replaced_by`).

        Raises:
            ValueError: No issuer was ever given.
        """
        new_issuer = issuer if issuer is not None else self.issuer
        if not new_issuer:
            raise ValueError("an issuer is required")
        verifier = TokenVerifier(
            keys,
            issuer=new_issuer,
            clock=self.clock,
            leeway=self.leeway,
            is_revoked=self.revocations.ids.__contains__,
            profile=self.profile,
        )
        current = self._trusted
        if current is None:
            trusted = TrustedKeys(verifier, self._empty)
        else:
            trusted = current.replaced_by(verifier)
        self._trusted, self.issuer = trusted, new_issuer  # keys and issuer move together

    def remember(
        self, token: str, principal: Principal, *, until: float | None = None
    ) -> Principal:
        """Cache a principal verified elsewhere (remote mode), unless it is revoked.

        Args:
            token: The token as verified.
            principal: Its caller.
            until: Forget the answer at this time already, before the token's ``exp``.

        Raises:
            TokenRevoked: The revocation set refuses it.
            VerifierUnavailable: The revocation set cannot be trusted.
        """
        if self.revocations.failed:
            raise VerifierUnavailable()
        if self.revocations.refuses(principal):
            raise TokenRevoked()
        self.cache.put(token, principal, until=until)
        return principal

    def lookup(self, token: str) -> Principal | None:
        """A cache hit, re-checked for expiry and against revocations, or None.

        Raises:
            TokenRevoked: The cached token was revoked since.
            VerifierUnavailable: The revocation set cannot be trusted.
        """
        revocations = self.revocations
        if revocations.failed:
            raise VerifierUnavailable()
        principal = self.cache.get(token, self.clock())
        if principal is not None and revocations.refuses(principal):
            raise TokenRevoked()
        return principal

    def recheck(self, principal: Principal) -> AuthError | None:
        """Whether a token valid when its call started has expired or been revoked since.

        The same rules as a cache hit apply.

        Returns:
            The error to end the call with, or None while the token is still good.
        """
        if is_expired(principal.expires_at, self.clock(), self.leeway):
            return TokenExpired()
        if self.revocations.failed:
            return VerifierUnavailable()
        if self.revocations.refuses(principal):
            return TokenRevoked()
        return None

    def knows_kid_of(self, token: str) -> bool:
        """Whether the token's ``kid`` is one of the trusted keys (cheap header peek)."""
        keys = self.keys
        if keys is None:
            return False
        kid = peek_kid(token)
        return kid is not None and kid in keys

    def needs_key_refetch(self, token: str) -> bool:
        """Whether ``token`` names a ``kid`` outside the trusted keys (keys already known).

        Such a token may be signed with a key published since they were fetched.
        """
        return self.keys is not None and not self.knows_kid_of(token)

    def verify(self, token: str) -> Principal:
        """Fully verify ``token`` (signature, claims, revocation) and cache the result.

        Raises:
            VerifierUnavailable: No key set has been obtained yet, or the revocation set
                cannot be trusted (an event of an unknown kind arrived).
            AuthError: The token is not valid.
        """
        trusted = self._trusted
        if trusted is None or self.revocations.failed:
            raise VerifierUnavailable()
        principal = trusted.verifier.authenticate(token, audience=self.audience)
        if self.revocations.refuses(principal):
            raise TokenRevoked()
        trusted.cache.put(token, principal)
        return principal


def peek_kid(token: str) -> str | None:
    """The ``kid`` a token's header names (None if it names none or is malformed).

    Nothing is verified: the result only selects which trusted key to try.
    """
    header, _, _ = token.partition(".")
    if not header or len(header) > _MAX_HEADER_PEEK:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, RecursionError):
        return None
    kid = value.get("kid") if isinstance(value, dict) else None
    return kid if isinstance(kid, str) else None


def peek_issuer(token: str) -> str:
    """The ``iss`` a token's claims name, read strictly but NOT verified.

    It only selects among the issuers a service configured.

    Raises:
        TokenMalformed: Not a compact JWS of bounded size.
        TokenInvalid: The claims are not a strict JSON object with a string ``iss``.
    """
    issuer = unverified_claims(parse_compact(token, max_bytes=MAX_TOKEN_BYTES)).get("iss")
    if not isinstance(issuer, str):
        raise TokenInvalid()
    return issuer
