"""Records the store tests write: signing keys and refresh tokens at a fixed time."""

from __future__ import annotations

from bearer_grpc.store import KeyRecord, RefreshToken

NOW = 1_800_000_000
HOUR = 3600


def key(kid: str, not_before: int = NOW) -> KeyRecord:
    return KeyRecord(
        kid=kid,
        alg="ES256",
        public_jwk=f'{{"kid": "{kid}"}}',
        private_key=b"-----BEGIN PRIVATE KEY-----\n\x00\xff" + kid.encode(),
        created_at=NOW,
        not_before=not_before,
    )


def refresh(
    token_hash: str,
    *,
    family_id: str = "family-1",
    subject: str = "alice",
    access_jti: str = "",
    issued_at: int = NOW,
    expires_at: int = NOW + HOUR,
    access_expires_at: int = NOW + 300,
) -> RefreshToken:
    """A refresh token of alice's (by default) family, started an hour ago. Its access
    tokens name their family; ``access_jti`` makes one written before they did."""
    return RefreshToken(
        token_hash=token_hash,
        family_id=family_id,
        subject=subject,
        client_id="web",
        scopes=("orders.read",),
        audience="orders",
        issued_at=issued_at,
        expires_at=expires_at,
        access_jti=access_jti,
        access_expires_at=access_expires_at,
        account_id=f"id-{subject}",
        started_at=NOW - HOUR,
    )
