"""WatchRevocations streams: who may open one, how many, and what each one sends.

- **Anonymous, bounded.** Watching needs no credential: a verifier is set up with the
  TokenService's address alone, and a revocation event names only random ids, a subject
  and times. Streams are bounded instead: ``watch_streams_per_peer`` per network address
  and ``watch_streams`` in all; beyond either, RESOURCE_EXHAUSTED (with ``RetryInfo``).
  Deployments that must not show even that much put the TokenService behind mTLS.
- **Fails closed for old watchers.** A watcher must declare every event kind the server
  sends (``understood_kinds``); one that does not is refused with FAILED_PRECONDITION
  before any event, so it never counts as caught up and answers VERIFIER_UNAVAILABLE,
  instead of skipping revocations it cannot read.
- **Fan-out independent of slow readers.** Each stream pulls from the one in-memory log
  at its own pace, a page at a time, from its own sequence: nothing is queued per
  stream, a reader that stalls costs nothing but its open call, and an event's message
  is built once for every stream (:func:`event_message`).
- **Keys.** When a key leaves the published set, the server ends every stream (OK):
  verifiers refetch the keys before they resume, so they stop trusting a withdrawn key
  within a second instead of at their next routine refetch.
"""

from __future__ import annotations

import functools
import threading
from typing import Final

from bearer_grpc.core.errors import Incompatible, InvalidRequest, Overloaded
from bearer_grpc.core.verification import RevocationKind
from bearer_grpc.service.throttle import peer_address
from bearer_grpc.store import Revocation
from bearer_grpc.v1 import token_service_pb2 as pb

PAGE: Final = 256
"""Events a stream reads from the log at a time."""
SENT_KINDS: Final = frozenset(
    {pb.REVOCATION_KIND_TOKEN, pb.REVOCATION_KIND_FAMILY, pb.REVOCATION_KIND_SUBJECT}
)
"""The event kinds this server sends: a watcher must understand every one."""
_WIRE_KINDS: Final = {
    RevocationKind.TOKEN: pb.REVOCATION_KIND_TOKEN,
    RevocationKind.FAMILY: pb.REVOCATION_KIND_FAMILY,
    RevocationKind.SUBJECT: pb.REVOCATION_KIND_SUBJECT,
}


def check_request(request: pb.WatchRevocationsRequest) -> None:
    """Refuse a request this server cannot serve in full.

    Raises:
        InvalidRequest: ``after_sequence`` is negative.
        Incompatible: The watcher does not declare every kind this server sends.
    """
    if request.after_sequence < 0:
        raise InvalidRequest("after_sequence must not be negative")
    if not set(request.understood_kinds) >= SENT_KINDS:
        raise Incompatible(
            "this watcher does not apply every revocation kind (subject, family): "
            "upgrade bearer-grpc"
        )


class StreamLimits:
    """How many WatchRevocations streams are open, in all and per peer.

    Args:
        total: Streams open at once.
        per_peer: Of those, streams one network address may hold.
    """

    def __init__(self, total: int, per_peer: int) -> None:
        self._total = total
        self._per_peer = per_peer
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}
        self.count = 0

    def __repr__(self) -> str:
        return f"StreamLimits(open={self.count}, total={self._total})"

    def acquire(self, peer: str) -> str:
        """Take one stream for ``peer``; returns the key to :meth:`release` it with.

        Raises:
            Overloaded: All streams are taken, or this peer holds its share.
        """
        address = peer_address(peer)
        with self._lock:
            held = self._open.get(address, 0)
            if self.count >= self._total:
                raise Overloaded("too many revocation streams open; retry later")
            if held >= self._per_peer:
                raise Overloaded("too many revocation streams from this address")
            self._open[address] = held + 1
            self.count += 1
        return address

    def release(self, address: str) -> None:
        """Give back a stream taken with :meth:`acquire`."""
        with self._lock:
            self.count -= 1
            left = self._open[address] - 1
            if left:
                self._open[address] = left
            else:
                del self._open[address]


@functools.lru_cache(maxsize=8192)
def event_message(revocation: Revocation) -> pb.WatchRevocationsResponse:
    """The event of one revocation, built once and sent on every stream.

    It is never changed after it is built.
    """
    kind = revocation.kind
    return pb.WatchRevocationsResponse(
        sequence=revocation.sequence,
        token_id=revocation.jti if kind is RevocationKind.TOKEN else "",
        expires_at=revocation.expires_at,
        kind=_WIRE_KINDS[kind],
        family_id=revocation.target if kind is RevocationKind.FAMILY else "",
        subject=revocation.target if kind is RevocationKind.SUBJECT else "",
        not_before=revocation.not_before,
    )
