"""How a verifier follows its TokenService (the *upstream*), written once.

The sync and the asyncio verifiers drive the same rules and differ only in how they
call and wait (a daemon thread with a sync channel, or a task on the event loop):

- :class:`Upstream`: where the TokenService is and how to talk to it;
- :class:`~bearer_grpc.core.backoff.Backoff` (in the pure core, shared with the token
  sources): the delays between reconnection attempts;
- :class:`RefetchGate`: at most one key refetch per unknown ``kid`` per interval, and
  one per second overall;
- :func:`verify_flow`, :func:`step`: a local verification that asks its driver for one
  key refetch when the token names an unknown ``kid``;
- :func:`apply_jwks`, :func:`keys_fetched`, :func:`apply_revocation`, :func:`prune`:
  what a ``GetJwks`` answer (or failure) or a ``WatchRevocations`` event does to the
  in-memory state and the link log;
- :func:`stream_start`, :func:`resume`, :class:`RevocationFeed`, :func:`stream_ended`:
  what a ``WatchRevocations`` stream announces before its first event, whether the
  verifier may resume there or must start over from sequence 0, when it has caught up,
  and whether the stream was healthy when it ended;
- :func:`silent_link`: when a call's silence means the connection is dead (the driver
  then replaces its channel);
- :func:`accept_remote`: a ``VerifyToken`` answer as a principal or the matching error.

Nothing here does I/O: the drivers make the calls and hand the answers over.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import grpc
from google.protobuf import json_format

from bearer_grpc._watch_metadata import BACKLOG_END_KEY, CURSOR_KEY, EPOCH_KEY
from bearer_grpc.core.backoff import Backoff
from bearer_grpc.core.errors import (
    AuthError,
    KeyMaterialError,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenMissing,
    TokenRevoked,
)
from bearer_grpc.core.flow import LocalVerification
from bearer_grpc.core.flow import _peek_kid as peek_kid  # the one header peek
from bearer_grpc.core.keys import PublicKeySet
from bearer_grpc.core.tokens import Principal
from bearer_grpc.v1 import token_service_pb2 as pb

log = logging.getLogger("bearer_grpc.verifier")

REFETCH_SPACING: Final = 1.0
"""Least time between two unknown-``kid`` key refetches of one verifier, seconds."""
REMEMBERED_KIDS: Final = 256
"""Unknown ``kid`` values a verifier remembers having looked for."""

_MAX_SEQUENCE_DIGITS: Final = 20

_REMOTE_ERRORS: Final[Mapping[str, type[AuthError]]] = {
    error.reason: error
    for error in (TokenMissing, TokenMalformed, TokenInvalid, TokenExpired, TokenRevoked)
}


@dataclass(frozen=True)
class Upstream:
    """Where a verifier's TokenService is and how the verifier talks to it.

    Attributes:
        target: The TokenService address, ``host:port`` (any gRPC target).
        credentials: Channel credentials (TLS, mTLS); None for a plaintext channel.
        remote: Verify with ``VerifyToken`` instead of locally with the JWKS.
        timeout: Deadline of each unary call (``GetJwks``, ``VerifyToken``), seconds.
        refetch_interval: Least time between two key refetches for unknown ``kid``s.
        startup_timeout: Longest wait for the first key set (see the verifiers).
        resync_interval: Lifetime of one ``WatchRevocations`` stream, seconds. When it
            ends the verifier prunes expired revocations, refetches the keys (so retired
            keys are dropped) and resumes the stream; it also bounds how long a silently
            dead connection goes unnoticed.
        backoff: Delays between reconnection attempts.
    """

    target: str
    credentials: grpc.ChannelCredentials | None = field(default=None, repr=False)
    remote: bool = False
    timeout: float = 2.0
    refetch_interval: float = 30.0
    startup_timeout: float = 5.0
    resync_interval: float = 60.0
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if not self.target:
            raise ValueError("target is required")
        if self.timeout <= 0 or self.resync_interval <= 0:
            raise ValueError("timeout and resync_interval must be positive")
        if self.refetch_interval < 0 or self.startup_timeout < 0:
            raise ValueError("refetch_interval and startup_timeout must not be negative")

    def channel_options(self) -> list[tuple[str, Any]]:
        """gRPC channel arguments: reconnect no slower than :attr:`backoff` allows, on
        connections of the verifier's own (gRPC shares them between channels with the
        same arguments otherwise, so a replacement channel could inherit a dead one)."""
        return [
            ("grpc.initial_reconnect_backoff_ms", math.ceil(self.backoff.initial * 1000)),
            ("grpc.max_reconnect_backoff_ms", math.ceil(self.backoff.maximum * 1000)),
            ("grpc.use_local_subchannel_pool", 1),
        ]


class RefetchGate:
    """Decides which unknown-``kid`` key refetches may start (not thread-safe by itself:
    the sync driver holds a lock around it, the asyncio driver runs on one loop).

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


class LinkLog:
    """Logs the link to the TokenService going down and coming back, once per change
    (an outage is one warning, not one per reconnection attempt).

    Args:
        target: The TokenService address, for the log records.
    """

    def __init__(self, target: str) -> None:
        self._target = target
        self._up = True

    def up(self) -> None:
        """The TokenService answered."""
        if not self._up:
            self._up = True
            log.info("TokenService reachable again", extra={"target": self._target})

    def down(self, error: BaseException) -> None:
        """A call to the TokenService failed."""
        if self._up:
            self._up = False
            log.warning(
                "TokenService unreachable: retrying with backoff",
                extra={"target": self._target, "error": _describe(error)},
            )

    def bad_keys(self, error: KeyMaterialError) -> None:
        """The TokenService answered with a key set that fails hygiene (kept the old one)."""
        log.warning(
            "TokenService published an unusable key set: keeping the last known good",
            extra={"target": self._target, "error": str(error)},
        )


def status_of(error: BaseException) -> grpc.StatusCode | None:
    """The status code of a failed gRPC call (None for other errors)."""
    code = getattr(error, "code", None)  # grpc.Call errors; a bare RpcError has none
    status = code() if callable(code) else None
    return status if isinstance(status, grpc.StatusCode) else None


def _describe(error: BaseException) -> str:
    status = status_of(error)
    return status.name if status is not None else type(error).__name__


def token_kid(token: str) -> str | None:
    """The ``kid`` a token's header names (None if it names none or is malformed)."""
    return peek_kid(token)


def unknown_kid(local: LocalVerification, token: str) -> bool:
    """Whether ``token`` names a ``kid`` outside the key set (keys already known)."""
    return local.keys is not None and not local.knows_kid_of(token)


def verify_flow(local: LocalVerification, token: str) -> Generator[None, None, Principal]:
    """Verify ``token`` locally, yielding once if the keys must be refetched first.

    A token whose ``kid`` is unknown may be signed with a key published since the last
    fetch: the flow yields, the driver refetches the keys (rate-limited, see
    :class:`RefetchGate`) and resumes it with :func:`step`. If the ``kid`` is still
    unknown the first :class:`TokenInvalid` stands; else the token is verified again.

    Raises:
        AuthError: The token is not valid.
    """
    try:
        return local.verify(token)
    except TokenInvalid:
        if not unknown_kid(local, token):
            raise
        yield  # the driver refetches the keys
        if unknown_kid(local, token):
            raise
    return local.verify(token)


def step(flow: Generator[None, None, Principal]) -> Principal | None:
    """Run ``flow`` (:func:`verify_flow`) on: its principal, or None when it yielded
    (refetch the keys, then step it again)."""
    try:
        next(flow)
    except StopIteration as done:
        principal: Principal = done.value
        return principal
    return None


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


def apply_revocation(local: LocalVerification, event: pb.WatchRevocationsResponse) -> None:
    """Record one ``WatchRevocations`` event (and the sequence to resume after)."""
    local.revocations.add(event.token_id, event.expires_at, event.sequence)


@dataclass(frozen=True)
class StreamStart:
    """What a ``WatchRevocations`` stream announced in its initial metadata.

    Each field is None when the server did not send it (an older server, or a call that
    failed before its metadata): never a default such as 0.

    Attributes:
        epoch: The id of the server's store (``bearer-grpc-epoch``).
        cursor: The highest sequence the server has read from its store
            (``bearer-grpc-cursor``).
        backlog_end: The sequence of the last backlog event (``bearer-grpc-backlog-end``).
    """

    epoch: str | None = None
    cursor: int | None = None
    backlog_end: int | None = None


def stream_start(initial_metadata: Iterable[tuple[str, str | bytes]] | None) -> StreamStart:
    """Parse the initial metadata of a ``WatchRevocations`` call (None: none arrived).

    A malformed value counts as absent; of repeated keys the first counts.
    """
    values: dict[str, str] = {}
    for key, value in initial_metadata or ():
        if isinstance(value, str):
            values.setdefault(key, value)
    return StreamStart(
        epoch=values.get(EPOCH_KEY) or None,
        cursor=_sequence(values.get(CURSOR_KEY)),
        backlog_end=_sequence(values.get(BACKLOG_END_KEY)),
    )


def _sequence(value: str | None) -> int | None:
    if value is None or not (0 < len(value) <= _MAX_SEQUENCE_DIGITS):
        return None
    return int(value) if value.isascii() and value.isdigit() else None


class Resume(enum.Enum):
    """What a verifier does with a ``WatchRevocations`` stream that just started."""

    OK = "ok"
    """Follow it: its sequences continue the ones the verifier has."""
    RESET = "reset"
    """End it and reconnect at once from sequence 0: the server's revocation log is not the
    one the verifier's sequence counts in."""


def resume(epoch: str | None, after_sequence: int, start: StreamStart) -> Resume:
    """Whether a stream asked for the events after ``after_sequence`` may be followed.

    RESET when the verifier has a position (``after_sequence > 0``) and the server's log
    cannot be the one it counts in: the server names another store than the one the
    verifier remembers (``epoch``; the store was replaced), or it has read less of its
    store than the verifier has (the store was restored from an older backup, or
    replaced by a server that sends no epoch). Resuming there would silently skip every
    new revocation numbered up to ``after_sequence``. A missing header decides nothing
    (an older server): OK.

    Args:
        epoch: The store id the verifier remembers (None: none yet, first contact).
        after_sequence: The sequence the stream was asked to resume after.
        start: What the stream announced.
    """
    if after_sequence <= 0:
        return Resume.OK
    if epoch is not None and start.epoch is not None and start.epoch != epoch:
        return Resume.RESET
    if start.cursor is not None and start.cursor < after_sequence:
        return Resume.RESET
    return Resume.OK


def reached(start: StreamStart, sequence: int) -> bool:
    """Whether a verifier at revocation ``sequence`` has caught up with the backlog the
    stream announced (never when it announced none)."""
    return start.backlog_end is not None and sequence >= start.backlog_end


class RevocationFeed:
    """What a verifier remembers about its ``WatchRevocations`` streams across
    reconnections: the store it follows (epoch), and whether it ever caught up.

    Driven by one writer (the background thread or task); others only read
    :attr:`caught_up`.

    Args:
        local: The in-memory verification state (its revocation set).
        target: The TokenService address, for the log records.
    """

    def __init__(self, local: LocalVerification, target: str) -> None:
        self.local = local
        self.epoch: str | None = None
        self.caught_up = False
        """Set for good once a stream's announced backlog was applied: from then on the
        revocation set is a last known good state, kept through later outages."""
        self._target = target

    def open(self, after_sequence: int, start: StreamStart) -> Resume:
        """Apply :func:`resume` to a stream that just started.

        On RESET the revocation sequence goes back to 0 (the revoked ids already known
        stay: harmless) and a warning is logged; the driver ends the stream and
        reconnects at once. Either way a new epoch is remembered.
        """
        decision = resume(self.epoch, after_sequence, start)
        if decision is Resume.RESET:
            self.local.revocations.restart()
            replaced = self.epoch is not None and start.epoch not in (None, self.epoch)
            log.warning(
                "TokenService revocation log restarted (%s): following it again from the start",
                "another store" if replaced else "its store is behind this verifier",
                extra={
                    "target": self._target,
                    "after_sequence": after_sequence,
                    "server_cursor": start.cursor,
                },
            )
        if start.epoch is not None:
            self.epoch = start.epoch
        return decision

    def advance(self, start: StreamStart) -> bool:
        """Note the progress of a followed stream; True once caught up (ever)."""
        if not self.caught_up and reached(start, self.local.revocations.sequence):
            self.caught_up = True
        return self.caught_up


def stream_ended(
    link: LinkLog,
    events: int,
    lived: float,
    backoff: Backoff,
    error: BaseException | None = None,
    *,
    started: bool = True,
    quiet: bool = False,
) -> bool:
    """Whether a followed ``WatchRevocations`` stream was healthy when it ended (then the
    driver reconnects at once, else after the next backoff delay).

    Healthy: it started (the server's initial metadata arrived) and then ended by its own
    deadline (``DEADLINE_EXCEEDED``, after ``resync_interval``), or delivered events, or
    lived at least ``backoff.maximum`` seconds. A stream that never started is not
    healthy however long it waited: the link is down (see :func:`silent_link`). Any
    failure but the deadline of a started stream means the link is down (not logged
    when ``quiet``: the driver is stopping).

    Args:
        link: The link log.
        events: How many events the stream delivered.
        lived: How long it lived, seconds.
        backoff: The reconnection delays.
        error: What it failed with (None: it ended normally).
        started: Whether its initial metadata (or an event) arrived.
        quiet: Do not log a failure.
    """
    started = started or events > 0
    if error is not None:
        if started and status_of(error) == grpc.StatusCode.DEADLINE_EXCEEDED:
            return True
        if not quiet:
            link.down(error)
    return started and (events > 0 or lived >= backoff.maximum)


def silent_link(outcome: object, *, started: bool = False) -> bool:
    """Whether a call's outcome suggests its connection died silently (a partition, a
    peer or middlebox that vanished without a reset): it ran into its deadline without
    any answer (for a stream: before its initial metadata).

    gRPC keeps using such a connection until TCP gives up, which may take many
    minutes or never happen (no keepalive is assumed of the server): the driver replaces
    its channel, so the next attempt opens a new connection.
    """
    return (
        isinstance(outcome, BaseException)
        and not started
        and status_of(outcome) == grpc.StatusCode.DEADLINE_EXCEEDED
    )


def prune(local: LocalVerification) -> int:
    """Forget revocations of tokens no verifier accepts any more. Returns how many."""
    return local.revocations.prune(local.clock() - local.leeway)


def remote_request(local: LocalVerification, token: str) -> pb.VerifyTokenRequest:
    """The ``VerifyToken`` request for ``token`` (scopes are the policy's business)."""
    return pb.VerifyTokenRequest(token=token, audience=local.audience)


def accept_remote(
    local: LocalVerification, token: str, response: pb.VerifyTokenResponse
) -> Principal:
    """Turn a ``VerifyToken`` answer into the principal, cached until the token expires.

    Raises:
        AuthError: ``active`` is false (the subclass named by ``reason``; TokenInvalid
            for a reason this version does not know), or the answer is incomplete, or
            the token was revoked here meanwhile.
    """
    if not response.active:  # (scopes are the policy's: none are sent, none can be missing)
        raise _REMOTE_ERRORS.get(response.reason, TokenInvalid)()
    if not (response.subject and response.token_id and response.expires_at):
        raise TokenInvalid()
    principal = Principal(
        subject=response.subject,
        scopes=frozenset(response.scopes),
        token_id=response.token_id,
        issuer=response.issuer,
        audience=tuple(response.audience),
        client_id=response.client_id,
        issued_at=response.issued_at,
        expires_at=response.expires_at,
        claims=MappingProxyType(_claims(response)),
    )
    return local.remember(token, principal)


def _claims(response: pb.VerifyTokenResponse) -> dict[str, Any]:
    claims = json_format.MessageToDict(response.claims)
    return {name: _integral(value) for name, value in claims.items()}


def _integral(value: Any) -> Any:
    # google.protobuf.Struct carries every number as a double; JWT NumericDates and
    # other whole numbers were integers in the token, so give them back as int.
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    return value
