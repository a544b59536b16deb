"""The in-memory revocation log of a token service process, and what wakes its watchers.

It mirrors the store's revocation log as a gap-free prefix: it only ever advances by
reading the store after its last sequence (never by inserting a local write directly),
so a revocation that another replica commits between two local ones is not skipped.
What is revoked is a :class:`~bearer_grpc.core.verification.RevocationSet`, the same rule
every verifier applies; watchers read entries after their own sequence, a page at a time.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import threading

from bearer_grpc.core.secrets import new_id
from bearer_grpc.core.tokens import Principal
from bearer_grpc.core.verification import RevocationKind, RevocationSet
from bearer_grpc.service.settings import EPOCH_SETTING
from bearer_grpc.store import Revocation, Store

_PAGE = 1000


def new_epoch(store: Store) -> str:
    """Give the store's revocation log a new epoch (its id in ``WatchRevocations``).

    Run after restoring a backup: the restored log numbers new revocations from an
    older sequence again. Every verifier that sees the new epoch follows the log again
    from sequence 0, instead of resuming after a sequence that now names other
    revocations (and skipping them). Servers sharing the store pick the epoch up at
    their next read of it (at once, or at the latest within their sync interval), read
    their log again and end their streams.

    Returns:
        The new epoch.

    Raises:
        StoreError: The store cannot be written.
    """
    epoch = new_id()
    store.replace_setting(EPOCH_SETTING, epoch)
    return epoch


class RevocationLog:
    """Active revocations in sequence order, fed from the store."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known = RevocationSet()
        self._ordered: list[Revocation] = []
        self._sequences: list[int] = []
        self._cursor = 0

    def __repr__(self) -> str:
        return f"RevocationLog(active={len(self._ordered)}, cursor={self._cursor})"

    @property
    def cursor(self) -> int:
        """Sequence of the last revocation read from the store."""
        return self._cursor

    @property
    def newest(self) -> int:
        """Sequence of the newest active revocation (0: none)."""
        sequences = self._sequences
        return sequences[-1] if sequences else 0

    def is_revoked(self, jti: str) -> bool:
        """Whether the token id ``jti`` is revoked (a dict lookup; safe from any thread)."""
        return jti in self._known

    def refuses(self, principal: Principal) -> bool:
        """Whether ``principal``'s token is revoked: its ``jti``, refresh family or subject.

        The rule every verifier applies; safe from any thread.
        """
        return self._known.refuses(principal)

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
                    if revocation.expires_at >= horizon:
                        key = (
                            revocation.jti
                            if revocation.kind is RevocationKind.TOKEN
                            else revocation.target
                        )
                        self._known.apply(
                            revocation.kind,
                            key,
                            expires_at=revocation.expires_at,
                            not_before=revocation.not_before,
                            sequence=revocation.sequence,
                        )
                        self._ordered.append(revocation)
                        self._sequences.append(revocation.sequence)
                        added += 1
                if len(page) < _PAGE:
                    return added

    def restart(self) -> None:
        """Follow the store's log again from sequence 0.

        It is another log now (a new epoch, after a restored backup). The revoked ids
        already known stay refused (harmless: the restore may have lost their rows); the
        next :meth:`catch_up` reads everything again.
        """
        with self._lock:
            self._ordered = []
            self._sequences = []
            self._cursor = 0
            self._known.restart()

    def after(self, sequence: int, limit: int = _PAGE) -> list[Revocation]:
        """Active revocations with a sequence greater than ``sequence``, ascending.

        At most ``limit`` of them.
        """
        with self._lock:
            start = bisect.bisect_right(self._sequences, sequence)
            return self._ordered[start : start + limit]

    def prune(self, horizon: int) -> int:
        """Forget revocations of tokens that expired before ``horizon``.

        ``horizon`` is ``now - 2 * leeway``: a token is accepted until ``exp + leeway``, so
        its revocation must last as long. Returns how many were forgotten.
        """
        with self._lock:
            keep = [r for r in self._ordered if r.expires_at >= horizon]
            removed = len(self._ordered) - len(keep)
            if removed:
                self._ordered = keep
                self._sequences = [r.sequence for r in keep]
                self._known.prune(horizon)
            return removed


class RevocationNotifier:
    """Wakes every WatchRevocations stream when the revocation log has grown.

    Every wake-up advances :attr:`generation`. A watcher reads the generation *before*
    it reads the log, and then waits for the generation to move past what it read: a
    wake-up that happens while it is busy sending (suspended in a ``yield``) is not
    lost, it makes the next wait return at once.

    Lives on the event loop; call its methods from the loop thread only.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._cursor = 0
        self.generation = 0
        """Counts the wake-ups so far (see :meth:`wait`)."""
        self.restarts = 0
        """Counts :meth:`restart` calls: a stream opened before the last one ends."""
        self.closing = False

    def notify(self, cursor: int) -> None:
        """Wake current waiters if the log's ``cursor`` moved since the last notification."""
        if cursor != self._cursor:
            self._cursor = cursor
            self._wake()

    def restart(self) -> None:
        """End every open stream (OK), so that watchers reconnect.

        After a key left the published set, verifiers refetch the keys before they resume.
        """
        self.restarts += 1
        self._wake()

    def close(self) -> None:
        """Wake every waiter, now and later: the server is stopping."""
        self.closing = True
        self._wake()

    def _wake(self) -> None:
        self.generation += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, seen: int, timeout: float) -> None:
        """Wait for a wake-up after generation ``seen``, or ``timeout`` seconds.

        Returns at once when the generation has already moved past ``seen`` (a wake-up
        came while the caller was busy), and not at all once closing.
        """
        if self.closing or self.generation != seen:
            return
        # asyncio.timeout, not wait_for: no task per waiter, a wake-up reaches thousands.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._event.wait()
