"""A bounded cache of verified tokens: a reused token costs a dict lookup, not a signature.

Keyed by the exact token string that was fully verified (a different spelling of the
same token is a miss and gets verified on its own); the key held is the SHA-256 digest of
the string, so no token string is kept. Only b64tokens (RFC 6750) are stored, which the
interceptors' cache-hit shortcut relies on. Entries leave at ``exp + leeway`` (checked on
every hit) or when the cache is full (least recently inserted first). Revocation is
checked by ``jti`` on every hit by the caller, never cached. Cached principals are
compacted to share equal values. The argument and the memory layout are in
docs/design/cache.md.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from hashlib import sha256
from types import MappingProxyType
from typing import Any, Final

from bearer_grpc.core.header import B64TOKEN
from bearer_grpc.core.tokens import Principal, is_expired

DEFAULT_CACHE_SIZE: Final = 10_000
"""Entries kept by default (under 1 KiB each for typical ES256 tokens)."""

_POOL_SIZE: Final = 4096
_SHARED_CLAIMS: Final = frozenset({"iss", "aud", "client_id", "scope", "typ", "azp"})


class TokenCache:
    """Verified principals by token string (its digest), bounded in size, evicted at expiry.

    Thread-safe enough for its use, and without locks: single dict operations are atomic
    under the GIL and a lost insert only costs a later re-verification.

    Args:
        max_size: Most entries kept; 0 disables caching.
        leeway: Seconds past ``exp`` an entry may still be returned.
    """

    __slots__ = ("_entries", "_pool", "_until", "hits", "leeway", "max_size", "misses")

    def __init__(self, max_size: int = DEFAULT_CACHE_SIZE, *, leeway: int = 30) -> None:
        if max_size < 0:
            raise ValueError("max_size must not be negative")
        self.max_size = max_size
        self.leeway = leeway
        self._entries: OrderedDict[bytes, Principal] = OrderedDict()
        self._until: dict[bytes, float] = {}  # earlier deadlines than exp, for some entries
        self._pool = _Pool(_POOL_SIZE)
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"TokenCache(size={len(self._entries)}, max_size={self.max_size})"

    def get(self, token: str, now: float) -> Principal | None:
        """The principal cached for ``token``, unless absent or expired at ``now``."""
        try:
            key = sha256(token.encode()).digest()
        except UnicodeEncodeError:  # a lone surrogate: no b64token, never stored
            key = b""
        principal = self._entries.get(key)
        if principal is None:
            self.misses += 1
            return None
        if is_expired(principal.expires_at, now, self.leeway) or (
            self._until and now >= self._until.get(key, now + 1)
        ):
            self._entries.pop(key, None)
            self._until.pop(key, None)
            self.misses += 1
            return None
        self.hits += 1
        return principal

    def put(self, token: str, principal: Principal, *, until: float | None = None) -> None:
        """Remember a verified token, evicting the oldest entry when full.

        A ``token`` that is not a b64token is not stored (no verified token is one).

        Args:
            token: The token as verified.
            principal: Its caller.
            until: Forget it at this time already, before its ``exp`` (an answer
                trusted for a while only).
        """
        if self.max_size == 0 or B64TOKEN.fullmatch(token) is None:
            return
        entries = self._entries
        key = sha256(token.encode()).digest()
        if until is not None:
            self._until[key] = until
        entries[key] = self._pool.compact(principal)
        while len(entries) > self.max_size:
            try:
                old, _ = entries.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break
            self._until.pop(old, None)

    def clear(self) -> None:
        """Forget every entry (e.g. after the trusted keys changed)."""
        self._entries.clear()
        self._until.clear()


class _Pool:
    """Shares equal values between cached principals.

    Strings many tokens have in common (claim names, issuer, audience, client id, scope)
    are interned (``sys.intern``: freed again once no entry uses them), except a client
    id equal to the subject, which shares the subject's string; scope sets and
    audience tuples go through a pool of at most ``size`` entries, used as they come once
    full. Per-token values (``jti``, ``sub``, times) are kept as they are.
    """

    __slots__ = ("_size", "_values")

    def __init__(self, size: int) -> None:
        self._size = size
        self._values: dict[Any, Any] = {}

    def share(self, value: Any) -> Any:
        """The pooled object equal to ``value`` (``value`` itself if new or full)."""
        values = self._values
        pooled = values.get(value)
        if pooled is not None and type(pooled) is type(value):
            return pooled
        if len(values) < self._size:
            values[value] = value
        return value

    def compact(self, principal: Principal) -> Principal:
        """``principal`` itself, its fields replaced by equal shared objects.

        In place (as the dataclass's own ``__init__`` sets fields), so that the caller's
        principal and the cached one stay the same object; nothing observable changes
        but the identity of equal values.
        """
        subject, client_id = principal.subject, principal.client_id
        claims: dict[str, Any] = {
            _intern(name): (
                value
                if type(value) is not str or name not in _SHARED_CLAIMS
                else subject
                if value == subject  # a client acting for itself: no string of its own
                else _intern(value)
            )
            for name, value in principal.claims.items()
            if type(name) is str
        }
        if len(claims) != len(principal.claims):  # pragma: no cover (JSON names are str)
            return principal
        iat = principal.issued_at
        if type(claims.get("nbf")) is int and claims["nbf"] == iat:
            claims["nbf"] = iat
        setattr_ = object.__setattr__
        setattr_(principal, "scopes", self.share(principal.scopes))
        setattr_(principal, "issuer", _intern(principal.issuer))
        setattr_(principal, "audience", self.share(principal.audience))
        setattr_(principal, "client_id", subject if client_id == subject else _intern(client_id))
        setattr_(principal, "claims", MappingProxyType(claims))
        return principal


def _intern(value: str) -> str:
    return sys.intern(value) if type(value) is str else value
