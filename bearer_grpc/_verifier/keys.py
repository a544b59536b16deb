"""How a verifier keeps the TokenService's keys, written once for both flavours.

- :func:`apply_jwks`, :func:`keys_fetched`: what a ``GetJwks`` answer (or failure) does
  to the trusted keys and the link log: an unusable answer keeps the last known good;
- :class:`RefetchGate`: which unknown-``kid`` refetches may start.

Nothing here does I/O: the followers make the calls and hand the answers over.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from bearer_grpc._channel import LinkLog
from bearer_grpc.core.errors import KeyMaterialError
from bearer_grpc.core.keys import PublicKeySet
from bearer_grpc.core.verification import LocalVerification
from bearer_grpc.v1 import token_service_pb2 as pb

REFETCH_SPACING: Final = 1.0
"""Least time between two unknown-``kid`` key refetches of one verifier, seconds."""
REMEMBERED_KIDS: Final = 256
"""Unknown ``kid`` values a verifier remembers having looked for."""


class RefetchGate:
    """Decides which unknown-``kid`` key refetches may start.

    Not thread-safe by itself: the sync driver holds a lock around it, the asyncio driver
    runs on one loop.

    Two limits: each ``kid`` is looked for at most once per ``interval`` (a refetch that
    did not find it is not repeated for it), and refetches start at least ``spacing``
    seconds apart whatever the ``kid`` (so tokens naming ever new ``kid`` values cost at
    most one ``GetJwks`` per ``spacing``). The ``kid`` values looked for are remembered,
    at most ``remember`` of them (the oldest are forgotten first).

    A single gate for every ``kid`` would let one token with a made-up ``kid`` (or a key
    rotation) block the refetch of a genuinely new key for a whole ``interval``, so that
    valid tokens of a key staged with a short delay were refused meanwhile.

    Args:
        interval: Least time between two refetches for the same ``kid``, seconds.
        clock: Monotonic time source.
        spacing: Least time between any two refetches, seconds (at most ``interval``).
        remember: Most ``kid`` values remembered.
    """

    def __init__(
        self,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        spacing: float = REFETCH_SPACING,
        remember: int = REMEMBERED_KIDS,
    ) -> None:
        self._interval = interval
        self._spacing = min(spacing, interval)
        self._clock = clock
        self._remember = remember
        self._next = -math.inf
        self._tried: OrderedDict[str | None, float] = OrderedDict()  # kid -> may retry at

    def try_pass(self, kid: str | None = None) -> bool:
        """True, and note the refetch, if one may start now for ``kid``."""
        now = self._clock()
        tried = self._tried
        while tried and next(iter(tried.values())) <= now:  # forget what expired
            tried.popitem(last=False)
        if now < self._next or now < tried.get(kid, -math.inf):
            return False
        self._next = now + self._spacing
        tried.pop(kid, None)
        tried[kid] = now + self._interval  # entries stay ordered by expiry
        while len(tried) > self._remember:
            tried.popitem(last=False)
        return True


def apply_jwks(local: LocalVerification, response: pb.GetJwksResponse) -> None:
    """Trust the keys and issuer of a ``GetJwks`` answer.

    Raises:
        KeyMaterialError: The key set breaks a hygiene rule, is empty, or names no issuer; the
            keys trusted so far stay (last known good).
    """
    keys = PublicKeySet.from_json(response.jwks_json)
    if not keys:
        raise KeyMaterialError("TokenService published an empty key set")
    if not response.issuer:
        raise KeyMaterialError("TokenService published no issuer")
    local.set_keys(keys, issuer=response.issuer)


def keys_fetched(
    local: LocalVerification,
    link: LinkLog,
    outcome: pb.GetJwksResponse | BaseException,
    first_keys: Callable[[], None],
    *,
    quiet: bool = False,
) -> None:
    """Handle the outcome of one ``GetJwks`` call: its answer, or the error it failed with.

    An answer is applied (:func:`apply_jwks`): the link is up and ``first_keys`` is
    signalled, or, for an unusable key set, that is logged and the old keys stay. A
    failure means the link is down (not logged when ``quiet``: the driver is stopping).
    """
    if isinstance(outcome, BaseException):
        if not quiet:
            link.down(outcome)
        return
    try:
        apply_jwks(local, outcome)
    except KeyMaterialError as err:
        link.bad_keys(err)
        return
    link.up()
    first_keys()
