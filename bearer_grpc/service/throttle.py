"""Throttling of password and secret guessing, shared by every replica through the store.

Failed sign-ins are counted under three keys, each with its own allowance and delays:

- **(account, peer)**: one peer guessing one account's password. After ``free`` failures
  every further attempt must wait 1 s, then 2 s, 4 s ... up to ``cap``.
- **peer**: one peer guessing many accounts (password spraying).
- **account**: many peers guessing one account (a distributed attack). Its delay is
  short (a minute at most) and a peer that signed in to the account successfully in the
  last ``known_for`` seconds is not held by it: an attacker elsewhere can slow the owner
  down, never lock them out.

A password attempt is counted *before* its password is checked, in one store
transaction that also decides whether it may run: concurrent attempts cannot slip past
the count, and a refused attempt costs no scrypt work. A success resets the account's
counts. Every delay is bounded and counts are forgotten ``memory`` seconds after the last
failure, so no attacker can cause a permanent lockout. The answer to a held attempt is
:class:`LoginThrottled` (RESOURCE_EXHAUSTED with ``RetryInfo``), whatever the password.

Client secrets are 256-bit random values, so guessing one is hopeless; only the peer key
throttles them (an account key would only let an attacker lock a service out). The check
before a client-credentials grant reads this process's memory of blocked peers (no store
access on the hot path); failures are counted in the store.

Keys are digests (never a name or an address in clear); a peer is the caller's network
address without its port (``ipv4:10.0.0.7``).
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from bearer_grpc.core.clock import Clock
from bearer_grpc.core.errors import LoginThrottled
from bearer_grpc.store import Store, Throttle

_PORT = re.compile(r"^(ipv4:[^:]+|ipv6:\[[^\]]*\]):\d+$")
_BLOCKED_KEPT: Final = 10_000
"""Blocked peers this process remembers for the client-credentials check."""


def peer_address(peer: str) -> str:
    """The caller's address without its port (``ipv4:10.0.0.7:51234`` → ``ipv4:10.0.0.7``).

    That way new connections from one host count as one peer.
    """
    match = _PORT.match(peer)
    return match.group(1) if match else peer


@dataclass(frozen=True)
class Limit:
    """How many failures one key allows, and the delays after them.

    Attributes:
        free: Failures allowed before delays start.
        cap: Longest delay, seconds.
    """

    free: int
    cap: int

    def delay(self, failures: int) -> int:
        """Seconds to wait after ``failures`` failures: 0, then 1, 2, 4 ... up to ``cap``."""
        if failures <= self.free:
            return 0
        return min(self.cap, 1 << min(failures - self.free - 1, 30))


@dataclass(frozen=True)
class ThrottlePolicy:
    """The allowances (see the module docstring), with their defaults.

    Attributes:
        pair: (account, peer): 5 free failures, delays up to 15 minutes.
        peer: One peer over all accounts: 20 free failures, delays up to 15 minutes.
        account: One account over all peers: 20 free failures, delays up to 60 seconds.
        memory: Seconds after the last failure when a key's count is forgotten (1 hour).
        known_for: Seconds a successful sign-in exempts that peer from the account's
            delays (30 days).
    """

    pair: Limit = Limit(free=5, cap=900)
    peer: Limit = Limit(free=20, cap=900)
    account: Limit = Limit(free=20, cap=60)
    memory: int = 3600
    known_for: int = 30 * 24 * 3600


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(("bearer-grpc-throttle", *parts)).encode()).hexdigest()


def _password_keys(username: str, peer: str) -> tuple[str, str, str]:
    """The keys a password attempt counts under: (account, peer), peer, account."""
    address = peer_address(peer)
    return _key("pair", username, address), _key("peer", address), _key("account", username)


def _fresh(row: Throttle, now: int, memory: int) -> Throttle:
    """The row, with its count forgotten if its last failure is ``memory`` seconds old."""
    if row.failures and row.updated_at < now - memory and row.blocked_until <= now:
        return replace(row, failures=0, blocked_until=0)
    return row


def _counted(row: Throttle, limit: Limit, now: int) -> Throttle:
    failures = row.failures + 1
    delay = limit.delay(failures)
    blocked_until = now + delay if delay else row.blocked_until
    return replace(row, failures=failures, blocked_until=blocked_until, updated_at=now)


class LoginThrottle:
    """Counts failed sign-ins in the store and holds back guessers (module docstring).

    Args:
        store: Where the counts live (shared by replicas).
        clock: Wall-clock time source.
        policy: The allowances.
    """

    def __init__(self, store: Store, clock: Clock, policy: ThrottlePolicy | None = None) -> None:
        self._store = store
        self._clock = clock
        self.policy = policy or ThrottlePolicy()
        self._lock = threading.Lock()
        self._blocked: OrderedDict[str, int] = OrderedDict()  # peer key: blocked until

    def __repr__(self) -> str:
        return f"LoginThrottle(blocked_peers={len(self._blocked)})"

    def _now(self) -> int:
        return math.floor(self._clock())

    def begin_password(self, username: str, peer: str) -> None:
        """Count a password attempt, before its password is checked.

        Raises:
            LoginThrottled: The account or the peer must wait (nothing is counted).
            StoreUnavailable: The store cannot answer.
        """
        policy, now = self.policy, self._now()
        pair, by_peer, account = _password_keys(username, peer)

        def decide(rows: dict[str, Throttle]) -> Mapping[str, Throttle]:
            fresh = {key: _fresh(row, now, policy.memory) for key, row in rows.items()}
            known = fresh[pair].known_until > now
            held = [fresh[pair], fresh[by_peer]] + ([] if known else [fresh[account]])
            blocked = max(row.blocked_until for row in held)
            if blocked > now:
                raise LoginThrottled(retry_after=blocked - now)
            counted = {
                pair: _counted(fresh[pair], policy.pair, now),
                by_peer: _counted(fresh[by_peer], policy.peer, now),
            }
            if not known:
                counted[account] = _counted(fresh[account], policy.account, now)
            return counted

        self._store.update_throttles((pair, by_peer, account), decide)

    def password_succeeded(self, username: str, peer: str) -> None:
        """The password was right: reset the account's counts and trust this peer for it.

        The peer's count of this attempt is taken back too.

        Raises:
            StoreUnavailable: The store cannot answer.
        """
        policy, now = self.policy, self._now()
        pair, by_peer, account = _password_keys(username, peer)

        def reset(rows: dict[str, Throttle]) -> Mapping[str, Throttle]:
            peer_row = rows[by_peer]
            return {
                pair: Throttle(pair, updated_at=now, known_until=now + policy.known_for),
                account: Throttle(account, updated_at=now),
                by_peer: replace(peer_row, failures=max(0, peer_row.failures - 1), updated_at=now),
            }

        self._store.update_throttles((pair, by_peer, account), reset)

    def check_secret(self, peer: str) -> None:
        """Before a client-credentials grant: refuse a peer this process knows is held.

        Raises:
            LoginThrottled: The peer must wait.
        """
        key = _key("peer", peer_address(peer))
        with self._lock:
            until = self._blocked.get(key, 0)
        now = self._now()
        if until > now:
            raise LoginThrottled(retry_after=until - now)

    def secret_failed(self, peer: str) -> None:
        """Count a failed client-credentials grant against its peer.

        Raises:
            LoginThrottled: The peer was already held (the answer is then this, whatever
                the credentials were).
            StoreUnavailable: The store cannot answer.
        """
        policy, now = self.policy, self._now()
        key = _key("peer", peer_address(peer))

        def decide(rows: dict[str, Throttle]) -> Mapping[str, Throttle]:
            row = _fresh(rows[key], now, policy.memory)
            if row.blocked_until > now:
                raise LoginThrottled(retry_after=row.blocked_until - now)
            return {key: _counted(row, policy.peer, now)}

        try:
            rows = self._store.update_throttles((key,), decide)
        except LoginThrottled as err:
            self._remember(key, now + math.ceil(err.retry_after))
            raise
        self._remember(key, rows[key].blocked_until)

    def _remember(self, key: str, until: int) -> None:
        with self._lock:
            if until <= self._now():
                self._blocked.pop(key, None)
                return
            self._blocked[key] = until
            self._blocked.move_to_end(key)
            while len(self._blocked) > _BLOCKED_KEPT:
                self._blocked.popitem(last=False)

    def horizon(self) -> int:
        """Throttle rows unchanged since before this may be pruned (see ``Store.prune``)."""
        return self._now() - self.policy.memory
