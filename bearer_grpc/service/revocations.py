"""The in-memory revocation log of a token service process, and what wakes its watchers.

It mirrors the store's revocation log as a gap-free prefix: it only ever advances by
reading the store after its last sequence (never by inserting a local write directly),
so a revocation that another replica commits between two local ones is not skipped.
Lookups by ``jti`` are a dict hit; watchers read entries after their own sequence.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import threading

from bearer_grpc.store import Revocation, Store

_PAGE = 1000


class RevocationLog:
    """Active revocations in sequence order, fed from the store."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_jti: dict[str, Revocation] = {}
        self._ordered: list[Revocation] = []
        self._sequences: list[int] = []
        self._cursor = 0

    def __repr__(self) -> str:
        return f"RevocationLog(active={len(self._by_jti)}, cursor={self._cursor})"

    @property
    def cursor(self) -> int:
        """Sequence of the last revocation read from the store."""
        return self._cursor

    def is_revoked(self, jti: str) -> bool:
        """Whether ``jti`` is revoked (a dict lookup; safe from any thread)."""
        return jti in self._by_jti

    def catch_up(self, store: Store, *, horizon: int) -> int:
        """Read every revocation committed after :attr:`cursor`. Returns how many were new.

        Args:
            store: Where revocations are committed.
            horizon: Revocations of tokens that expired before this time are skipped: no
                verifier accepts those tokens any more (the authority passes ``now - 2 * leeway``).

        Raises:
            StoreUnavailable: The store cannot be read (the log stays as it was).
        """
        added = 0
        with self._lock:
            while True:
                page = store.revocations_after(self._cursor, limit=_PAGE)
                for revocation in page:
                    self._cursor = revocation.sequence
                    if revocation.expires_at >= horizon and revocation.jti not in self._by_jti:
                        self._by_jti[revocation.jti] = revocation
                        self._ordered.append(revocation)
                        self._sequences.append(revocation.sequence)
                        added += 1
                if len(page) < _PAGE:
                    return added

    def after(self, sequence: int) -> list[Revocation]:
        """Active revocations with a sequence greater than ``sequence``, ascending."""
        with self._lock:
            start = bisect.bisect_right(self._sequences, sequence)
            return self._ordered[start:]

    def prune(self, horizon: int) -> int:
        """Forget revocations of tokens that expired before ``horizon`` (``now - 2 * leeway``:
        a token is accepted until ``exp + leeway``, so its revocation must last as long).
        Returns how many were forgotten."""
        with self._lock:
            keep = [r for r in self._ordered if r.expires_at >= horizon]
            removed = len(self._ordered) - len(keep)
            if removed:
                self._ordered = keep
                self._sequences = [r.sequence for r in keep]
                self._by_jti = {r.jti: r for r in keep}
            return removed


class RevocationNotifier:
    """Wakes every WatchRevocations stream when the revocation log has grown.

    Lives on the event loop; call its methods from the loop thread only.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._cursor = 0
        self.closing = False

    def notify(self, cursor: int) -> None:
        """Wake current waiters if the log's ``cursor`` moved since the last notification."""
        if cursor != self._cursor:
            self._cursor = cursor
            self._wake()

    def close(self) -> None:
        """Wake every waiter, now and later: the server is stopping."""
        self.closing = True
        self._wake()

    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> None:
        """Wait for the next notification, or ``timeout`` seconds (not at all once closing)."""
        event = self._event
        if self.closing:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
