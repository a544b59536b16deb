"""When a token source asks the TokenService for a new access token, written once.

``bearer_grpc.ClientCredentials`` (a worker thread) and
``bearer_grpc.aio.ClientCredentials`` (a task) drive the same :class:`Renewal` and differ
only in how they wait and call. The rules:

- a token is *usable* until its lifetime (``expires_in``, counted from when it was
  requested) has passed; callers get it at once, whatever the background is doing;
- it is *renewed* ``renew_before`` ahead of expiry (a fraction of its lifetime, or
  seconds), in the background, so calls never wait for a renewal while it is usable;
- after a failed request the next one waits a capped, jittered, exponentially growing
  delay (:func:`~bearer_grpc.core.backoff.backoff_delay`, the verifiers' schedule);
  while no usable token exists and the delay runs, callers get the last error at once
  instead of waiting or hammering the service.

Nothing here reads the clock, sleeps or draws random numbers: times and random values
come in as arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from bearer_grpc.core.backoff import BackoffPolicy, backoff_delay

DEFAULT_RENEW_BEFORE: Final = 0.2
"""Renew when a fifth of the token's lifetime is left."""


def renew_at(requested_at: float, lifetime: float, renew_before: float) -> float:
    """When to renew a token requested at ``requested_at`` that lives ``lifetime`` seconds.

    Args:
        requested_at: Clock time when the request was sent (the lifetime counts from
            there, so network delay only makes renewal earlier).
        lifetime: The token's ``expires_in``, seconds.
        renew_before: Below 1, a fraction of the lifetime; from 1 on, seconds. Never
            earlier than half the lifetime, so a long ``renew_before`` cannot make a
            short-lived token renew continuously.

    Returns:
        The clock time at which renewal should start.
    """
    ahead = renew_before * lifetime if renew_before < 1 else renew_before
    return requested_at + lifetime - min(ahead, lifetime / 2)


def check_renew_before(renew_before: float) -> float:
    """Validate a ``renew_before`` setting and return it.

    Raises:
        ValueError: Not a positive, finite number.
    """
    if not 0 < renew_before < math.inf:
        raise ValueError("renew_before must be a fraction in (0, 1) or seconds >= 1")
    return renew_before


@dataclass(frozen=True)
class CachedToken:
    """An access token and its timetable (clock times, seconds).

    Attributes:
        value: The token (never shown by ``repr``).
        expires_at: When it stops being usable.
        renew_at: When its renewal starts.
    """

    value: str = field(repr=False)
    expires_at: float
    renew_at: float


@dataclass(frozen=True)
class Ready:
    """Use ``token`` now; if ``renew``, nudge the background to renew it."""

    token: str = field(repr=False)
    renew: bool


@dataclass(frozen=True)
class Failed:
    """No usable token and the backoff delay still runs: fail with ``error`` now."""

    error: BaseException


@dataclass(frozen=True)
class Fetch:
    """No usable token: wait for the next request (start one if none is in flight)."""


Step = Ready | Failed | Fetch
"""What a caller asking for a token does next."""


class Renewal:
    """The token a source holds and when it must next ask for one.

    Not thread-safe: the sync driver holds its lock around every method, the asyncio
    driver runs on one event loop.

    Args:
        backoff: Bounds of the delays after failed requests.
        renew_before: See :func:`renew_at`. Default 0.2 (a fifth of the lifetime).
    """

    def __init__(
        self, backoff: BackoffPolicy, *, renew_before: float = DEFAULT_RENEW_BEFORE
    ) -> None:
        self.renew_before = check_renew_before(renew_before)
        self.backoff = backoff
        self.current: CachedToken | None = None
        self.failures = 0
        self.retry_at = -math.inf
        self.error: BaseException | None = None

    def decide(self, now: float) -> Step:
        """What a caller asking for a token at ``now`` does next."""
        current = self.current
        if current is not None and now < current.expires_at:
            return Ready(current.value, renew=self.due(now))
        if self.error is not None and now < self.retry_at:
            return Failed(self.error)
        return Fetch()

    def due(self, now: float) -> bool:
        """True when a request should start now.

        That is when the token is missing or due for renewal, and no backoff delay runs.
        """
        if now < self.retry_at:
            return False
        return self.current is None or now >= self.current.renew_at

    def seconds_until_due(self, now: float) -> float:
        """How long the background may sleep before :meth:`due` can become true."""
        if now < self.retry_at:
            return self.retry_at - now
        if self.current is None:
            return 0.0
        return max(0.0, self.current.renew_at - now)

    def succeeded(self, token: str, *, requested_at: float, lifetime: float) -> CachedToken:
        """Record a new token; ends any backoff.

        Args:
            token: The access token.
            requested_at: Clock time when the request was sent.
            lifetime: Its ``expires_in``, seconds (positive).
        """
        self.current = CachedToken(
            token,
            expires_at=requested_at + lifetime,
            renew_at=renew_at(requested_at, lifetime, self.renew_before),
        )
        self.failures = 0
        self.retry_at = -math.inf
        self.error = None
        return self.current

    def failed(self, error: BaseException, *, now: float, rand: float) -> float:
        """Record a failed request; returns the delay before the next one.

        A still-usable token is kept: callers go on using it while renewal retries.
        """
        self.failures += 1
        delay = backoff_delay(self.backoff, self.failures, rand)
        self.retry_at = now + delay
        self.error = error
        return delay

    def invalidate(self, token: str) -> bool:
        """Forget ``token`` if it is the current one (a server called it expired or revoked).

        Returns True if it was. An older token is ignored: it was replaced already.
        """
        if self.current is None or self.current.value != token:
            return False
        self.current = None
        return True
