"""The records the store keeps: accounts, signing keys, refresh tokens, revocations.

Times are integer seconds since the Unix epoch. Fields holding secrets are left out of
``repr``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from bearer_grpc.core.secrets import new_id
from bearer_grpc.core.verification import RevocationKind


class AccountKind(enum.StrEnum):
    """Who an account is: a service with client credentials, or a person with a password."""

    CLIENT = "client"
    USER = "user"


@dataclass(frozen=True)
class Account:
    """A client or user that may obtain tokens.

    Clients and users share one namespace: a name is either one or the other, so a token's
    ``sub`` always names exactly one account. A name removed and created again is a new
    account, with a new ``id``: refresh families belong to the id, not the name.

    Attributes:
        name: Unique name; the ``sub`` of the tokens it obtains (``client_id`` for clients).
        kind: Client or user.
        credential_hash: Keyed hash of a client secret, or password hash of a user; never shown.
        scopes: Scopes the account may request.
        audiences: Audiences the account may address; the first is the default.
        created_at: Creation time.
        id: The account's identity, random and never reused (a fresh one by default).
        certificate_bound: A client whose access tokens are bound to its mTLS certificate
            (RFC 8705): it must present one to get a token.
        not_before: As read from the store: tokens of this name issued at or before this
            time are revoked (0: none). Ignored by :meth:`Store.add_account`.
        previous_credential_hash: A client's secret before its last rotation, still
            accepted until ``previous_valid_until`` ("" when none); never shown.
        previous_valid_until: Until when (exclusive) the previous secret is accepted.
    """

    name: str
    kind: AccountKind
    credential_hash: str = field(repr=False)
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    created_at: int
    id: str = field(default_factory=new_id)
    certificate_bound: bool = False
    not_before: int = 0
    previous_credential_hash: str = field(default="", repr=False)
    previous_valid_until: int = 0


class AccountClaim(NamedTuple):
    """What a grant asks :meth:`Store.confirm_accounts` to decide: is ``name`` still there?

    Attributes:
        name: The account's name (the token's ``sub``).
        kind: Client or user.
        issued_at: The ``iat`` of the token signed for it.
    """

    name: str
    kind: AccountKind
    issued_at: int


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

    The tokens rotated from one login form a *family*, which belongs to one account (its
    id, not its name) and is revoked as a whole: one row, one event, whatever its length.
    The access tokens issued with a family name it in their ``sid`` claim.

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
            for tokens written before access tokens named their family (revoked one by one
            with the family); "" since.
        access_expires_at: Expiry of the access token issued together with it.
        used: Already exchanged (rotated); presenting it again is reuse.
        revoked: The family was revoked.
        account_id: The id of the account the family belongs to.
        started_at: When the family's login happened (the session's start).
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
    account_id: str = ""
    started_at: int = 0


@dataclass(frozen=True)
class Revocation:
    """An entry of the revocation log, kept until every token it revokes has expired.

    What it revokes depends on its ``kind``: one access token (``jti``), every access
    token of a refresh family (``target`` is the family id), or every token of a subject
    issued at or before ``not_before`` (``target`` is the subject).

    Attributes:
        sequence: Position in the revocation log (strictly increasing, commit order).
        jti: Token id; for the other kinds a random id of the entry itself.
        expires_at: When the last token it revokes expires; the row may be pruned after it.
        revoked_at: Time of revocation.
        kind: What it revokes.
        target: The family id or the subject ("" for a token).
        not_before: For a subject: tokens issued at or before this time are revoked.
    """

    sequence: int
    jti: str
    expires_at: int
    revoked_at: int
    kind: RevocationKind = RevocationKind.TOKEN
    target: str = ""
    not_before: int = 0


@dataclass(frozen=True)
class Throttle:
    """Failed sign-ins counted under one key (an account, a peer, or both), for throttling.

    The store only keeps these rows and changes them atomically; what they mean is the
    token service's business.

    Attributes:
        key: An opaque key (a digest; never a name in clear).
        failures: Attempts counted since the last reset.
        blocked_until: No attempt is allowed before this time (0: none).
        updated_at: Time of the last change.
        known_until: For an (account, peer) key: the peer signed in successfully, and is
            trusted until this time (0: never).
    """

    key: str
    failures: int = 0
    blocked_until: int = 0
    updated_at: int = 0
    known_until: int = 0


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


@dataclass(frozen=True)
class AuditEvent:
    """One change to a deployment, written in the same transaction as the change.

    Attributes:
        actor: Who made it: the caller's subject, ``"local CLI"`` for a command run on the
            store itself, ``"token holder"`` for a token revoked by value.
        action: What was done, e.g. ``"client.create"`` or ``"subject.revoke"``.
        target: What it was done to: a name, a kid, a token id or a family id.
        at: When (seconds since the Unix epoch).
        detail: Further facts (scopes, deadlines...), JSON-ready; never a secret.
        sequence: Position in the trail (0 until the store wrote it).
    """

    actor: str
    action: str
    target: str
    at: int
    detail: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    sequence: int = 0
