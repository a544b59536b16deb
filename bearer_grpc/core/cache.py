"""A bounded cache of verified tokens: a reused token costs a dict lookup, not a signature.

Keyed by the exact token string that was fully verified (a different spelling of the
same token is a miss and gets verified on its own). Entries leave at ``exp + leeway``
(checked on every hit) or when the cache is full (least recently inserted first).
Revocation is checked by ``jti`` on every hit by the caller, never cached.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from bearer_grpc.core.tokens import Principal, is_expired

DEFAULT_CACHE_SIZE: Final = 10_000
"""Entries kept by default (about 1 KiB each)."""


class TokenCache:
    """Verified principals by token string, bounded in size, evicted at expiry.

    Thread-safe enough for its use: single dict operations are atomic under the GIL and a
    lost insert only costs a later re-verification.

    Args:
        max_size: Most entries kept; 0 disables caching.
        leeway: Seconds past ``exp`` an entry may still be returned.
    """

    def __init__(self, max_size: int = DEFAULT_CACHE_SIZE, *, leeway: int = 30) -> None:
        if max_size < 0:
            raise ValueError("max_size must not be negative")
        self.max_size = max_size
        self._leeway = leeway
        self._entries: OrderedDict[str, Principal] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"TokenCache(size={len(self._entries)}, max_size={self.max_size})"

    def get(self, token: str, now: float) -> Principal | None:
        """The principal cached for ``token``, unless absent or expired at ``now``."""
        principal = self._entries.get(token)
        if principal is None:
            self.misses += 1
            return None
        if is_expired(principal.expires_at, now, self._leeway):
            self._entries.pop(token, None)
            self.misses += 1
            return None
        self.hits += 1
        return principal

    def put(self, token: str, principal: Principal) -> None:
        """Remember a verified token, evicting the oldest entry when full."""
        if self.max_size == 0:
            return
        entries = self._entries
        entries[token] = principal
        while len(entries) > self.max_size:
            try:
                entries.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break

    def clear(self) -> None:
        """Forget every entry (e.g. after the trusted keys changed)."""
        self._entries.clear()
