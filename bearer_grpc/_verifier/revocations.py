"""How a verifier follows ``WatchRevocations``, written once for both flavours.

- :func:`stream_start`, :class:`StreamStart`: what a stream announces before its first
  event (the store's epoch, the server's cursor, the end of the backlog);
- :func:`resume`, :class:`Resume`, :class:`RevocationFeed`: whether the verifier may
  resume there or must start over from sequence 0, and whether it has caught up;
- :func:`watch_request`, :func:`apply_revocation`, :func:`prune`: the request that
  declares the event kinds this version applies, what an event does to the revocation
  set (an event of a kind it does not know makes the verifier fail closed), and
  forgetting revocations of tokens nobody accepts any more;
- :func:`stream_ended`: whether the stream was healthy when it ended.

Nothing here does I/O: the followers make the calls and hand the answers over. The
protocol, and why each rule is there, is in docs/design/revocation-stream.md.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import grpc

from bearer_grpc._channel import LinkLog, status_of
from bearer_grpc.core.backoff import Backoff
from bearer_grpc.core.verification import LocalVerification, RevocationKind
from bearer_grpc.core.wire import BACKLOG_END_KEY, CURSOR_KEY, EPOCH_KEY
from bearer_grpc.v1 import token_service_pb2 as pb

log = logging.getLogger("bearer_grpc.verifier")

_MAX_SEQUENCE_DIGITS: Final = 20
_KINDS: Final = {
    pb.REVOCATION_KIND_UNSPECIFIED: RevocationKind.TOKEN,  # an older server
    pb.REVOCATION_KIND_TOKEN: RevocationKind.TOKEN,
    pb.REVOCATION_KIND_FAMILY: RevocationKind.FAMILY,
    pb.REVOCATION_KIND_SUBJECT: RevocationKind.SUBJECT,
}
UNDERSTOOD_KINDS: Final = (
    pb.REVOCATION_KIND_TOKEN,
    pb.REVOCATION_KIND_FAMILY,
    pb.REVOCATION_KIND_SUBJECT,
)
"""The event kinds this version applies, declared in every ``WatchRevocations`` request."""


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
    """Whether a verifier at revocation ``sequence`` has caught up with the announced backlog.

    Never when the stream announced none.
    """
    return start.backlog_end is not None and sequence >= start.backlog_end


class RevocationFeed:
    """What a verifier remembers about its ``WatchRevocations`` streams across reconnections.

    The store it follows (epoch), and whether it ever caught up.

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


def watch_request(after_sequence: int) -> pb.WatchRevocationsRequest:
    """The ``WatchRevocations`` request for the events after ``after_sequence``.

    It declares the kinds this version applies (the server refuses a watcher that lacks one
    it sends).
    """
    return pb.WatchRevocationsRequest(
        after_sequence=after_sequence, understood_kinds=UNDERSTOOD_KINDS
    )


def apply_revocation(local: LocalVerification, event: pb.WatchRevocationsResponse) -> None:
    """Record one ``WatchRevocations`` event (and the sequence to resume after).

    An event of a kind this version does not know means a revocation it cannot apply: the
    revocation set is marked failed, and every verification fails closed from then on
    (``VerifierUnavailable``), instead of accepting tokens that may be revoked.
    """
    kind = _KINDS.get(event.kind)
    revocations = local.revocations
    if kind is None:
        revocations.fail_closed()
        log.error(
            "revocation event of an unknown kind: refusing every token from now on",
            extra={"kind": int(event.kind), "sequence": event.sequence},
        )
        return
    key = {
        RevocationKind.TOKEN: event.token_id,
        RevocationKind.FAMILY: event.family_id,
        RevocationKind.SUBJECT: event.subject,
    }[kind]
    revocations.apply(
        kind,
        key,
        expires_at=event.expires_at,
        not_before=event.not_before,
        sequence=event.sequence,
    )


def prune(local: LocalVerification) -> int:
    """Forget revocations of tokens no verifier accepts any more. Returns how many."""
    return local.revocations.prune(local.clock() - local.leeway)


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
    """Whether a followed ``WatchRevocations`` stream was healthy when it ended.

    If it was, the driver reconnects at once, else after the next backoff delay.

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
