"""The signing keys of a deployment, as the store holds them, and staged rotation.

Keys are ordered by ``not_before``. At time *t* the newest key with ``not_before <= t``
signs. A key is published in the JWKS from its creation (so verifiers know it before it
signs) until ``retention`` seconds after the next key took over (so every token it
signed can still be verified until it expires). Nothing else is stored: both follow
from the ordered list.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

from bearer_grpc.core.keys import Algorithm, KeyEncryptionKey, PublicKeySet, SigningKey
from bearer_grpc.store import KeyRecord, Store


class KeyRing:
    """Loads, selects, publishes, rotates and prunes signing keys.

    Args:
        store: Where keys live (shared by every replica).
        kek: Key-encryption key for private keys at rest, or None (plain PKCS#8 in a
            store only the service user can read).
        retention: Seconds a key stays published after it stopped signing.
    """

    def __init__(self, store: Store, *, kek: KeyEncryptionKey | None, retention: int) -> None:
        self._store = store
        self._kek = kek
        self._retention = retention
        self._lock = threading.Lock()
        self._records: tuple[KeyRecord, ...] = ()
        self._loaded: dict[str, SigningKey] = {}

    def __repr__(self) -> str:
        return f"KeyRing(kids={[r.kid for r in self._records]!r})"

    def load(self, *, now: int, algorithm: Algorithm) -> None:
        """Read the keys from the store; create one if none signs at ``now`` (first start,
        or only staged keys so far).

        Raises:
            KeyError_: A stored key cannot be loaded (e.g. encrypted, no or wrong KEK).
            StoreUnavailable: The store cannot be read.
        """
        records = self._store.list_keys()
        if not any(r.not_before <= now for r in records):
            self._store.add_key(self.new_record(algorithm, not_before=now, now=now))
            records = self._store.list_keys()
        with self._lock:
            loaded = {r.kid: self._loaded.get(r.kid) or self._load(r) for r in records}
            self._records, self._loaded = tuple(records), loaded

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
