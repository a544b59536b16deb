"""The records the store keeps: accounts, signing keys, refresh tokens, revocations.

Times are integer seconds since the Unix epoch. Fields holding secrets are left out of
``repr``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


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
