"""Operator actions on a deployment's store: clients, users and keys.

The CLI's ``clients``, ``users`` and ``keys`` commands call these directly on the store
(``--data-dir`` or ``--store``); a running server picks the changes up on its next sync.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.errors import Conflict, InvalidRequest, NotFound
from bearer_grpc.core.keys import Algorithm, KeyEncryptionKey
from bearer_grpc.core.scopes import check_audience, check_name, check_scopes
from bearer_grpc.core.secrets import MAX_SECRET_LENGTH, hash_password, new_secret
from bearer_grpc.service.hasher import load_secret_hasher
from bearer_grpc.service.keyring import KeyRing
from bearer_grpc.store import Account, AccountKind, AlreadyExists, KeyRecord, Store

MIN_PASSWORD_LENGTH = 8
"""Shortest password accepted for a user."""
RESERVED_NAME = "bearer-grpc"
"""The ``client_id`` of password-grant tokens and the TokenService's own audience."""


@dataclass(frozen=True)
class NewClient:
    """A client just created; the secret is shown once and never stored in clear."""

    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"NewClient(client_id={self.client_id!r}, client_secret=<hidden>)"


class KeyState(enum.StrEnum):
    """Where a key is in its life."""

    STAGED = "staged"
    """Published, not yet signing."""
    SIGNING = "signing"
    """The key new tokens are signed with."""
    RETIRED = "retired"
    """Replaced; still published until the tokens it signed expire."""


class Admin:
    """Operator actions on one store.

    Args:
        store: The deployment's store.
        clock: Wall-clock time source.
    """

    def __init__(self, store: Store, *, clock: Clock = system_clock) -> None:
        self._store = store
        self._clock = clock

    def _now(self) -> int:
        return math.floor(self._clock())

    def add_client(
        self, name: str, *, scopes: Sequence[str], audiences: Sequence[str]
    ) -> NewClient:
        """Create a client with a fresh 256-bit secret.

        Raises:
            InvalidRequest: Bad name, scope or audience, or no audience.
            Conflict: The name is taken by a client or a user.
        """
        secret = new_secret()
        hashed = load_secret_hasher(self._store).hash(secret)
        self._add(name, AccountKind.CLIENT, hashed, scopes, audiences)
        return NewClient(client_id=name, client_secret=secret)

    def add_user(
        self, name: str, password: str, *, scopes: Sequence[str], audiences: Sequence[str]
    ) -> None:
        """Create a user with a password (stored with scrypt).

        Raises:
            InvalidRequest: Bad name, scope or audience, no audience, or a password shorter
                than 8 or longer than 512 characters.
            Conflict: The name is taken by a client or a user.
        """
        if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_SECRET_LENGTH:
            raise InvalidRequest(
                f"password must have {MIN_PASSWORD_LENGTH} to {MAX_SECRET_LENGTH} characters"
            )
        self._check(name, scopes, audiences)
        self._add(name, AccountKind.USER, hash_password(password), scopes, audiences)

    def _check(self, name: str, scopes: Sequence[str], audiences: Sequence[str]) -> None:
        check_name(name, what="name")
        if name == RESERVED_NAME:
            raise InvalidRequest(f"the name {name!r} is reserved")
        check_scopes(scopes)
        if not audiences:
            raise InvalidRequest("at least one audience is required")
        for audience in audiences:
            check_audience(audience)

    def _add(
        self,
        name: str,
        kind: AccountKind,
        credential_hash: str,
        scopes: Sequence[str],
        audiences: Sequence[str],
    ) -> None:
        self._check(name, scopes, audiences)
        principal = Account(
            name=name,
            kind=kind,
            credential_hash=credential_hash,
            scopes=check_scopes(scopes),
            audiences=tuple(dict.fromkeys(audiences)),
            created_at=self._now(),
        )
        try:
            self._store.add_account(principal)
        except AlreadyExists as err:
            raise Conflict(f"the name {name!r} is taken") from err

    def accounts(self, kind: AccountKind) -> list[Account]:
        """Clients or users, by name."""
        return self._store.list_accounts(kind)

    def remove(self, name: str, kind: AccountKind) -> None:
        """Delete a client or user and its refresh tokens.

        Access tokens already issued stay valid until they expire (at most the access
        lifetime); revoke them too if that is too long.

        Raises:
            NotFound: No such client or user.
        """
        if not self._store.remove_account(name, kind):
            raise NotFound(f"no {kind.value} named {name!r}")

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
            InvalidRequest: ``delay`` negative.
            KeyMaterialError: The stored keys are encrypted and ``kek`` is missing or wrong.
        """
        if delay < 0:
            raise InvalidRequest("delay must not be negative")
        ring = KeyRing(self._store, kek=kek, retention=0)
        return ring.stage(algorithm, delay=delay, now=self._now())

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
