"""Operator actions on signing keys, and what every operator action shares.

That is its actor, its clock and its audit events (the base of
:class:`~bearer_grpc.service.admin.Admin`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable

from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.errors import Conflict, InvalidRequest, NotFound
from bearer_grpc.core.keys import Algorithm, KeyEncryptionKey
from bearer_grpc.service import audit
from bearer_grpc.service.keyring import KeyRing
from bearer_grpc.service.settings import MAX_KEY_DELAY
from bearer_grpc.store import AuditEvent, KeyRecord, Store

WITHDRAW_MARGIN = 60
"""A staged key can be withdrawn only while it signs more than this many seconds from
now: a replica whose clock runs ahead must not have signed with it yet."""


class KeyState(enum.StrEnum):
    """Where a key is in its life."""

    STAGED = "staged"
    """Published, not yet signing."""
    SIGNING = "signing"
    """The key new tokens are signed with."""
    RETIRED = "retired"
    """Replaced; still published until the tokens it signed expire."""


class KeyAdmin:
    """Operator actions on the signing keys of one store.

    Args:
        store: The deployment's store.
        clock: Wall-clock time source.
        actor: Who acts, as the audit trail names them: the admin caller's subject, or
            :data:`~bearer_grpc.service.audit.LOCAL_CLI` (the default) for a command run
            on the store itself.
        keys: The key ring new keys are staged on (a running server's, holding its
            key-encryption key), or None for one built per rotation.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = system_clock,
        actor: str = audit.LOCAL_CLI,
        keys: KeyRing | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._actor = actor
        self._keys = keys

    def _now(self) -> int:
        return math.floor(self._clock())

    def _event(
        self, action: str, target: str, detail: dict[str, object] | None = None
    ) -> AuditEvent:
        return audit.event(self._actor, action, target, self._now(), detail)

    def rotate_key(
        self, *, algorithm: Algorithm, delay: int, kek: KeyEncryptionKey | None
    ) -> KeyRecord:
        """Stage a new signing key: published now, signing after ``delay`` seconds.

        Keys take over in the order they were added: a new key's ``not_before`` is always
        later than every existing key's (so with ``delay=0`` it signs from the next second
        at the latest, never ties with the key it replaces). The choice and the insert are
        one transaction under the store's keys lock, so rotations started at once on
        several machines still take over one after the other.

        Every replica and verifier must know the key before it signs: ``delay`` should
        exceed the verifiers' ``resync_interval`` (60 s by default; see
        :data:`~bearer_grpc.service.keyring.PUBLISH_DELAY`).

        Raises:
            InvalidRequest: ``delay`` negative or over 30 days (a key staged further
                ahead would hold back every later rotation).
            KeyMaterialError: The stored keys are encrypted and ``kek`` is missing or wrong.
        """
        if not 0 <= delay <= MAX_KEY_DELAY:
            raise InvalidRequest(f"delay must be 0..{MAX_KEY_DELAY} seconds")
        ring = self._keys or KeyRing(self._store, kek=kek, retention=0, actor=self._actor)
        events: list[AuditEvent] = []
        staged = ring.stage(
            algorithm, delay=delay, now=self._now(), audit=self._staged_event(events, delay)
        )
        for event in events:
            audit.logged(event)
        return staged

    def _staged_event(
        self, events: list[AuditEvent], delay: int
    ) -> Callable[[KeyRecord], AuditEvent]:
        def staged(record: KeyRecord) -> AuditEvent:
            detail: dict[str, object] = {"alg": record.alg, "delay": delay}
            events.append(self._event(audit.KEY_ROTATE, record.kid, detail))
            return events[-1]

        return staged

    def withdraw_key(self, kid: str) -> KeyRecord:
        """Withdraw a staged key before it signs: it is deleted and no longer published.

        Only a key that signs more than :data:`WITHDRAW_MARGIN` seconds from now can be
        withdrawn, so no replica can have signed with it; decided under the store's keys
        lock. Replicas stop publishing it at once, and verifiers that follow a
        TokenService stop trusting it within a second.

        Raises:
            NotFound: No key has that kid.
            Conflict: The key signs already, or will within the margin.
        """
        deadline = self._now() + WITHDRAW_MARGIN
        event = self._event(audit.KEY_WITHDRAW, kid)
        removed = self._store.remove_key_if(
            kid, lambda record: record.not_before > deadline, audit=event
        )
        if removed is not None:
            audit.logged(event)
            return removed
        if all(record.kid != kid for record in self._store.list_keys()):
            raise NotFound(f"no key {kid!r}")
        raise Conflict(f"key {kid!r} signs already (or within {WITHDRAW_MARGIN} s)")

    def key_states(self) -> list[tuple[KeyRecord, KeyState]]:
        """Every stored key with its state, oldest first."""
        now = self._now()
        records = self._store.list_keys()
        active = [r for r in records if r.not_before <= now]
        signing = active[-1].kid if active else None
        return [
            (
                r,
                KeyState.SIGNING
                if r.kid == signing
                else KeyState.STAGED
                if r.not_before > now
                else KeyState.RETIRED,
            )
            for r in records
        ]
