"""Records the store keeps, and the one interface every backend implements.

The store knows nothing about tokens, keys or hashing: it keeps rows and makes the
few compound changes atomic (refresh-token rotation, family revocation). Times are
integer seconds since the Unix epoch, passed in by the caller (the store never reads
a clock), so behaviour is the same under a frozen test clock.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bearer_grpc.core.errors import AlreadyExists as AlreadyExists
from bearer_grpc.core.errors import StoreError as StoreError
from bearer_grpc.core.errors import StoreUnavailable as StoreUnavailable
from bearer_grpc.store._notify import ChangeListener


class AccountKind(enum.StrEnum):
    """Who an account is: a service with client credentials, or a person with a password."""

    CLIENT = "client"
    USER = "user"


@dataclass(frozen=True)
class Account:
    """A client or user that may obtain tokens.

    Clients and users share one namespace: a name is either one or the other, so a token's
    ``sub`` always names exactly one account.

    Attributes:
        name: Unique name; the ``sub`` of the tokens it obtains (``client_id`` for clients).
        kind: Client or user.
        credential_hash: Keyed hash of a client secret, or password hash of a user; never shown.
        scopes: Scopes the account may request.
        audiences: Audiences the account may address; the first is the default.
        created_at: Creation time.
    """

    name: str
    kind: AccountKind
    credential_hash: str = field(repr=False)
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    created_at: int


@dataclass(frozen=True)
class KeyRecord:
    """A signing key pair as persisted.

    A key signs from ``not_before`` until the next newer key's ``not_before``; it stays
    published in the JWKS until every token it signed has expired. Both follow from the
    ordered list of keys, so nothing else is stored.

    Attributes:
        kid: RFC 7638 thumbprint of the public key.
        alg: JWS algorithm the key is bound to (ES256, EdDSA, RS256).
        public_jwk: Public key as a JSON object text (RFC 7517).
        private_key: Private key material: PKCS#8 PEM, or the same encrypted with a
            key-encryption key (format owned by ``bearer_grpc.core.keys``). Never shown.
        created_at: Creation time.
        not_before: Time from which the key signs.
    """

    kid: str
    alg: str
    public_jwk: str
    private_key: bytes = field(repr=False)
    created_at: int
    not_before: int


@dataclass(frozen=True)
class RefreshToken:
    """A refresh token as persisted (only the hash of its value is kept).

    Attributes:
        token_hash: SHA-256 hex digest of the opaque token value.
        family_id: All tokens rotated from one login share a family.
        subject: Account name.
        client_id: The client the family was issued to.
        scopes: Scopes granted to the family.
        audience: Audience of the access tokens issued with it.
        issued_at: Creation time.
        expires_at: Expiry time.
        access_jti: ``jti`` of the access token issued together with this refresh token,
            revoked with the family.
        access_expires_at: Expiry of that access token.
        used: Already exchanged (rotated); presenting it again is reuse.
        revoked: The family was revoked.
    """

    token_hash: str = field(repr=False)
    family_id: str
    subject: str
    client_id: str
    scopes: tuple[str, ...]
    audience: str
    issued_at: int
    expires_at: int
    access_jti: str
    access_expires_at: int
    used: bool = False
    revoked: bool = False


@dataclass(frozen=True)
class Revocation:
    """A revoked access token, kept until the token would have expired.

    Attributes:
        sequence: Position in the revocation log (strictly increasing, commit order).
        jti: Token id.
        expires_at: Expiry of the revoked token; the row may be pruned after it.
        revoked_at: Time of revocation.
    """

    sequence: int
    jti: str
    expires_at: int
    revoked_at: int


class RotationStatus(enum.Enum):
    """Outcome of presenting a refresh token."""

    ROTATED = "rotated"
    """The token was current: it is now used and its successor is stored."""
    REUSED = "reused"
    """The token had already been used: the whole family is now revoked."""
    INVALID = "invalid"
    """Unknown, expired, or of a revoked family: nothing changed."""


@dataclass(frozen=True)
class Rotation:
    """Result of :meth:`Store.rotate_refresh_token`.

    Attributes:
        status: What happened.
        previous: The presented token's record (None when unknown).
        revocations: Access-token revocations written because the family was revoked.
    """

    status: RotationStatus
    previous: RefreshToken | None
    revocations: tuple[Revocation, ...] = ()


class Store(Protocol):
    """The persistence port of the token service. Every method is one transaction."""

    # -- accounts --------------------------------------------------------------
    def add_account(self, account: Account) -> None:
        """Insert an account. Raises AlreadyExists if the name is taken (by either kind)."""
        ...

    def get_account(self, name: str, kind: AccountKind) -> Account | None:
        """The account of that name and kind, or None."""
        ...

    def list_accounts(self, kind: AccountKind) -> list[Account]:
        """All accounts of a kind, ordered by name."""
        ...

    def remove_account(self, name: str, kind: AccountKind) -> bool:
        """Delete an account and its refresh tokens. True if it existed."""
        ...

    # -- keys --------------------------------------------------------------------
    def add_key(self, key: KeyRecord) -> None:
        """Insert a key. Raises AlreadyExists for a duplicate kid."""
        ...

    def add_key_if(self, decide: Callable[[list[KeyRecord]], KeyRecord | None]) -> KeyRecord | None:
        """Insert the key ``decide(every stored key)`` returns, if any, one caller at a time
        (the decision and the insert are one transaction under the store's keys lock).
        Returns the inserted record or None. Raises AlreadyExists for a duplicate kid."""
        ...

    def list_keys(self) -> list[KeyRecord]:
        """All keys, oldest ``not_before`` first (ties by kid)."""
        ...

    def delete_key(self, kid: str) -> bool:
        """Delete a key (once no token it signed can still be valid). True if it existed."""
        ...

    # -- settings ------------------------------------------------------------------
    def get_or_create_setting(self, name: str, value: str) -> str:
        """Return the stored value of a setting, storing ``value`` first if absent (atomic)."""
        ...

    # -- refresh tokens ------------------------------------------------------------
    def add_refresh_token(self, token: RefreshToken) -> None:
        """Insert the first refresh token of a family."""
        ...

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        """The refresh token with this hash, or None."""
        ...

    def rotate_refresh_token(self, token_hash: str, successor: RefreshToken, now: int) -> Rotation:
        """Exchange a refresh token atomically.

        If ``token_hash`` names a current token (not used, not revoked, ``expires_at > now``),
        mark it used and insert ``successor`` (whose ``family_id``, ``subject``,
        ``client_id``, ``scopes`` and ``audience`` the store overwrites with the previous
        token's); status ROTATED. If it names a used token of a non-revoked family, revoke the
        family (every row ``revoked``, and every access token issued with the family gets a
        revocation, expired or not: verifiers accept tokens a leeway past ``exp``); status
        REUSED. Otherwise INVALID.
        """
        ...

    def revoke_refresh_family(self, token_hash: str, now: int) -> tuple[Revocation, ...] | None:
        """Revoke the family of the token with this hash, as REUSED does.

        Returns the access-token revocations written (possibly none), or None if no refresh
        token has that hash. Idempotent.
        """
        ...

    # -- revocations ---------------------------------------------------------------
    def revoke(self, jti: str, expires_at: int, now: int) -> Revocation:
        """Record a revocation; idempotent: an existing one for ``jti`` is returned as is."""
        ...

    def revocations_after(self, sequence: int, limit: int = 1000) -> list[Revocation]:
        """Revocations with a larger sequence, ascending, at most ``limit``."""
        ...

    def active_revocations(self, now: int) -> list[Revocation]:
        """Revocations whose token has not yet expired at ``now``, ascending by sequence."""
        ...

    # -- housekeeping ----------------------------------------------------------------
    def prune(self, now: int) -> int:
        """Delete revocations and refresh tokens expired before ``now``; return rows removed."""
        ...

    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
        ...

    def change_listener(self) -> ChangeListener:
        """A listener woken after revocations and new keys are committed (by any process
        where the backend can tell; at least by this one)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
