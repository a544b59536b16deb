"""How long to wait after consecutive failures, written once.

The verifiers (reconnecting to their TokenService) and ``ClientCredentials`` (requesting
a token) wait the same schedule: capped exponential backoff with "equal jitter".

- :class:`BackoffPolicy`: the bounds (a protocol; :class:`Backoff` is the one shipped);
- :func:`backoff_delay`: the n-th delay, the only place the schedule is computed;
- :class:`Backoff`: the bounds as configuration, and an iterator of delays.

Nothing here sleeps; random numbers come in as arguments (``rand``, ``rng``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from typing import Protocol


class BackoffPolicy(Protocol):
    """Bounds of the delays between failed requests (``bearer_grpc.Backoff`` is one).

    Attributes:
        initial: Upper bound of the first delay, seconds.
        maximum: Upper bound of every delay, seconds.
        multiplier: Growth of the bound per consecutive failure.
    """

    @property
    def initial(self) -> float:
        """Upper bound of the first delay, seconds."""

    @property
    def maximum(self) -> float:
        """Upper bound of every delay, seconds."""

    @property
    def multiplier(self) -> float:
        """Growth of the bound per consecutive failure."""


def backoff_delay(policy: BackoffPolicy, failures: int, rand: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures: capped exponential, jittered.

    A random time between half and all of ``min(maximum, initial * multiplier**(n - 1))``
    ("equal jitter"), so a fleet of clients or verifiers does not retry in lock-step
    after an outage.

    Args:
        policy: The bounds.
        failures: Consecutive failures so far (1 after the first).
        rand: A uniform random number in [0, 1).
    """
    exponent = min(max(failures, 1) - 1, 64)  # the cap wins long before; keeps ** small
    try:
        grown = policy.initial * policy.multiplier**exponent
    except OverflowError:  # a huge multiplier: far past the cap
        grown = policy.maximum
    bound = min(policy.maximum, grown)
    return bound * (0.5 + rand / 2)


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter between reconnection attempts.

    The n-th consecutive failure waits a random time between half and all of
    ``min(maximum, initial * multiplier**(n - 1))``; the jitter keeps a fleet of verifiers from
    reconnecting in lock-step after an outage. The same bounds are given to the gRPC
    channel as its own reconnect backoff, so a recovered service is reached within
    ``maximum`` seconds.

    Attributes:
        initial: Upper bound of the first delay, seconds. Default 0.1.
        maximum: Upper bound of every delay, seconds. Default 5.
        multiplier: Growth of the bound per consecutive failure. Default 2.
    """

    initial: float = 0.1
    maximum: float = 5.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError("backoff needs 0 < initial <= maximum")
        if self.multiplier < 1:
            raise ValueError("backoff multiplier must be at least 1")

    def delays(self, rng: Callable[[], float] = random.random) -> Iterator[float]:
        """Delays for consecutive failures (an endless iterator; start a new one on success).

        Args:
            rng: Uniform random numbers in [0, 1) (injected for tests).
        """
        for failures in count(1):
            yield backoff_delay(self, failures, rng())
