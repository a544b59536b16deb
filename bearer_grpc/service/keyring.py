"""The signing keys of a deployment, as the store holds them, and staged rotation.

Keys are ordered by ``not_before``. At time *t* the newest key with ``not_before <= t``
signs. A key is published in the JWKS from its creation (so verifiers know it before it
signs) until ``retention`` seconds after the next key took over (so every token it
signed can still be verified until it expires). Nothing else is stored: both follow
from the ordered list.

Every key is added through :meth:`Store.add_key_if`, which decides and inserts under the
store's keys lock: replicas starting together create one first key, not one each, and
of several replicas due for a scheduled rotation exactly one stages the next key.

**The publication rule.** A staged key must be known to everyone who verifies before it
signs: its ``not_before`` lies the pre-publish window ahead (``--key-publish-delay``,
:data:`PUBLISH_DELAY` by default). Replicas see a new key at once (PostgreSQL
``NOTIFY``; at the latest after ``sync_interval``); verifiers attached with
``Verifier.from_token_service`` refetch the JWKS every ``resync_interval`` (60 s by
default) and on an unknown ``kid``; verifiers of other projects fetch the JWKS URL on
their own schedule, and some (Envoy, Istio) never refetch for an unknown ``kid``, so the
window must be longer than their caches.

**The withdrawal rule.** A key leaves the published set when it is withdrawn before it
signs, or once every token it signed has expired. The server then ends its revocation
streams, and verifiers refetch the keys before resuming: they stop trusting the key
within a second of the server noticing (at once on PostgreSQL, at the next sync on
SQLite), not at their next routine refetch.

**Sealing.** With a key-encryption key, every key is kept sealed: keys written in the
clear before the key-encryption key was configured are sealed the first time a ring
that has it loads them (one transaction under the keys lock; see :meth:`KeyRing.load`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Final

from bearer_grpc.core.errors import KeyMaterialError
from bearer_grpc.core.keys import (
    Algorithm,
    KeyEncryptionKey,
    PublicKeySet,
    SigningKey,
    is_sealed,
)
from bearer_grpc.service import audit
from bearer_grpc.service.settings import DEFAULT_KEY_PUBLISH_DELAY
from bearer_grpc.store import AuditEvent, KeyRecord, Store

log = logging.getLogger("bearer_grpc.service")

PUBLISH_DELAY: Final = DEFAULT_KEY_PUBLISH_DELAY
"""Seconds a new key is published before it signs, unless told otherwise (30 min: see
:data:`~bearer_grpc.service.settings.DEFAULT_KEY_PUBLISH_DELAY`)."""


class KeyRing:
    """Loads, selects, publishes, rotates and prunes signing keys.

    Args:
        store: Where keys live (shared by every replica).
        kek: Key-encryption key for private keys at rest, or None (plain PKCS#8 in a
            store only the service user can read).
        retention: Seconds a key stays published after it stopped signing.
        actor: Who the audit events of the ring's own changes name (a first key, a
            scheduled key, a retired key deleted, keys sealed).
    """

    def __init__(
        self,
        store: Store,
        *,
        kek: KeyEncryptionKey | None,
        retention: int,
        actor: str = audit.TOKEN_SERVICE,
    ) -> None:
        self._store = store
        self._actor = actor
        self._kek = kek
        self._retention = retention
        self._lock = threading.Lock()
        self._records: tuple[KeyRecord, ...] = ()
        self._loaded: dict[str, SigningKey] = {}

    def __repr__(self) -> str:
        return f"KeyRing(kids={[r.kid for r in self._records]!r})"

    def load(self, *, now: int, algorithm: Algorithm) -> None:
        """Read the keys from the store; create one if none signs at ``now``.

        None signs at first start, or while there are only staged keys. With a key-encryption
        key, seal any key stored in the clear first.

        Raises:
            KeyMaterialError: A stored key cannot be loaded (e.g. encrypted, no or wrong KEK).
            StoreUnavailable: The store cannot be read.
        """
        records = self._store.list_keys()
        if self._kek is not None and any(not is_sealed(r.private_key) for r in records):
            self.seal(now)
            records = self._store.list_keys()
        if not any(r.not_before <= now for r in records):
            first = self.new_record(algorithm, not_before=now, now=now)
            event = self._event(audit.KEY_ROTATE, first, now, delay=0, trigger="first key")
            added = self._store.add_key_if(
                lambda stored: None if any(r.not_before <= now for r in stored) else first,
                audit=event,
            )
            if added is not None:
                audit.logged(event)
            records = self._store.list_keys()
        with self._lock:
            loaded = {r.kid: self._loaded.get(r.kid) or self._load(r) for r in records}
            self._records, self._loaded = tuple(records), loaded

    def seal(self, now: int) -> int:
        """Seal every key stored in the clear with this ring's key-encryption key.

        One transaction under the store's keys lock: replicas starting together seal each
        key once. Each key is loaded (and checked against its kid) before it is sealed.

        Returns:
            How many keys were sealed (0 without a key-encryption key).

        Raises:
            KeyMaterialError: A clear key cannot be loaded, or the sealed keys were sealed
                with another key-encryption key.
            StoreUnavailable: The store cannot be written.
        """
        kek = self._kek
        if kek is None:
            return 0

        def sealed(stored: list[KeyRecord]) -> list[KeyRecord]:
            self._check_kek(stored)
            return [
                replace(r, private_key=self._load(r).export_private(kek))
                for r in stored
                if not is_sealed(r.private_key)
            ]

        def sealed_event(record: KeyRecord) -> AuditEvent:
            return self._event(audit.KEY_SEAL, record, now)

        changed = self._store.update_keys(sealed, audit=sealed_event)
        for record in changed:
            audit.logged(sealed_event(record))
        if changed:
            log.warning(
                "sealed private keys stored in the clear with the key-encryption key",
                extra={"count": len(changed)},
            )
        return len(changed)

    def _load(self, record: KeyRecord) -> SigningKey:
        return SigningKey.load(record.kid, record.alg, record.private_key, self._kek)

    def new_record(self, algorithm: Algorithm, *, not_before: int, now: int) -> KeyRecord:
        """A fresh key as a record to store (sealed with the KEK when there is one)."""
        key = SigningKey.generate(algorithm)
        return KeyRecord(
            kid=key.kid,
            alg=key.alg,
            public_jwk=json.dumps(dict(key.jwk), sort_keys=True),
            private_key=key.export_private(self._kek),
            created_at=now,
            not_before=not_before,
        )

    def stage(
        self,
        algorithm: Algorithm,
        *,
        delay: int,
        now: int,
        audit: Callable[[KeyRecord], AuditEvent] | None = None,
    ) -> KeyRecord:
        """Stage a new key: published from now, signing after ``delay`` seconds.

        It always signs after every stored key, so keys take over in the order they were
        added.

        ``audit`` makes the event written with the key, from the new record.

        Raises:
            KeyMaterialError: The stored keys are sealed and this ring has no key-encryption key,
                or not the one that sealed them (a key nobody can load would be staged).
            StoreUnavailable: The store cannot be written.
        """
        self.seal(now)  # a key-encryption key given now seals the keys stored before it
        fresh = self.new_record(algorithm, not_before=now + delay, now=now)

        def after_latest(stored: list[KeyRecord]) -> KeyRecord:
            self._check_kek(stored)
            latest = max((r.not_before for r in stored), default=now - 1)
            return replace(fresh, not_before=max(fresh.not_before, latest + 1))

        event = audit(fresh) if audit is not None else None
        staged = self._store.add_key_if(after_latest, audit=event)
        assert staged is not None  # after_latest always picks one
        return staged

    def rotate_if_due(
        self, algorithm: Algorithm, *, every: int, now: int, delay: int = PUBLISH_DELAY
    ) -> KeyRecord | None:
        """Stage a key if the newest key was created ``every`` seconds ago or longer.

        See :meth:`stage`: the key is published ``delay`` seconds before it signs. None if
        it is not due.

        Safe to call from every replica at once: the store decides under its keys lock,
        so one of them stages the key and the others find it there.

        Raises:
            KeyMaterialError: See :meth:`stage`.
            StoreUnavailable: The store cannot be written.
        """

        def due(records: Sequence[KeyRecord]) -> bool:
            return all(r.created_at <= now - every for r in records)

        if not due(self._records):  # as last loaded: no store access until it is due
            return None
        fresh = self.new_record(algorithm, not_before=now + delay, now=now)

        def if_due(stored: list[KeyRecord]) -> KeyRecord | None:
            if not due(stored):
                return None
            self._check_kek(stored)
            latest = max((r.not_before for r in stored), default=now - 1)
            return replace(fresh, not_before=max(fresh.not_before, latest + 1))

        event = self._event(audit.KEY_ROTATE, fresh, now, delay=delay, trigger="schedule")
        staged = self._store.add_key_if(if_due, audit=event)
        if staged is not None:
            audit.logged(event)
        return staged

    def retire(self, now: int) -> int:
        """Delete the keys that are no longer published (see :meth:`expired`).

        Each deletion is audited. Returns how many keys were deleted here (another replica
        may have deleted some first).

        Raises:
            StoreUnavailable: The store cannot be written.
        """
        retired = 0
        for record in self.expired(now):
            event = self._event(audit.KEY_RETIRE, record, now)
            if self._store.remove_key_if(record.kid, lambda _stored: True, audit=event):
                audit.logged(event)
                retired += 1
        return retired

    def _event(self, action: str, record: KeyRecord, now: int, **detail: object) -> AuditEvent:
        return audit.event(self._actor, action, record.kid, now, {"alg": record.alg, **detail})

    def _check_kek(self, stored: Sequence[KeyRecord]) -> None:
        """Refuse a key other replicas could not load, or an unsealed one next to sealed ones."""
        sealed = [r for r in stored if is_sealed(r.private_key)]
        if not sealed:
            return
        if self._kek is None:
            raise KeyMaterialError(
                "the stored private keys are encrypted: give the key-encryption key"
            )
        newest = sealed[-1]
        SigningKey.load(newest.kid, newest.alg, newest.private_key, self._kek)

    @property
    def records(self) -> Sequence[KeyRecord]:
        """The keys as last loaded, oldest first."""
        return self._records

    def signing_key(self, now: int) -> SigningKey:
        """The key that signs at ``now``.

        Raises:
            LookupError: No key is active yet (only possible before :meth:`load`).
        """
        records = self._records
        active = [r for r in records if r.not_before <= now]
        if not active:
            raise LookupError("no active signing key")
        return self._loaded[active[-1].kid]

    def published(self, now: int) -> list[KeyRecord]:
        """Keys to publish at ``now``: staged, signing, and retired within retention."""
        records = self._records
        out = []
        for i, record in enumerate(records):
            successor = next((r for r in records[i + 1 :] if r.not_before <= now), None)
            if successor is None or successor.not_before + self._retention > now:
                out.append(record)
        return out

    def public_key_set(self, now: int) -> PublicKeySet:
        """The JWKS of :meth:`published` keys."""
        return PublicKeySet({"keys": [json.loads(r.public_jwk) for r in self.published(now)]})

    def expired(self, now: int) -> list[KeyRecord]:
        """Keys that are no longer published and can be deleted."""
        published = {r.kid for r in self.published(now)}
        return [r for r in self._records if r.kid not in published]
