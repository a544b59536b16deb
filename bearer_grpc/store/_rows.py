"""Records in and out of their rows, the same on every database.

The mapping, and the lookups by key and the revocation insert that several store methods
share.

Scope and audience lists become one space-joined column (see ``_schema``): a value that is
empty or contains whitespace is refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from bearer_grpc.core.secrets import new_id
from bearer_grpc.core.verification import RevocationKind
from bearer_grpc.store._errors import StoreError
from bearer_grpc.store._records import (
    Account,
    AccountKind,
    KeyRecord,
    RefreshToken,
    Revocation,
    Throttle,
)
from bearer_grpc.store._schema import refresh_families, refresh_tokens, revocations


def join(values: Iterable[str], what: str) -> str:
    """Space-join scope or audience tokens, refusing empty or whitespace ones (ValueError)."""
    for value in values:
        if not value or any(char.isspace() for char in value):
            raise ValueError(f"{what} must be non-empty and free of whitespace: {value!r}")
    return " ".join(values)


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def account_values(account: Account) -> dict[str, Any]:
    """The ``accounts`` row of an account."""
    return {
        "name": account.name,
        "kind": account.kind.value,
        "credential_hash": account.credential_hash,
        "scopes": join(account.scopes, "scopes"),
        "audiences": join(account.audiences, "audiences"),
        "created_at": account.created_at,
        "id": account.id,
        "certificate_bound": account.certificate_bound,
        "previous_credential_hash": account.previous_credential_hash,
        "previous_valid_until": account.previous_valid_until,
    }


def account(row: Row[Any], not_before: int | None = None) -> Account:
    """The account an ``accounts`` row holds (with its name's not-before, if read)."""
    return Account(
        name=row.name,
        kind=AccountKind(row.kind),
        credential_hash=row.credential_hash,
        scopes=_split(row.scopes),
        audiences=_split(row.audiences),
        created_at=row.created_at,
        id=row.id,
        certificate_bound=bool(row.certificate_bound),
        not_before=not_before or 0,
        previous_credential_hash=row.previous_credential_hash,
        previous_valid_until=row.previous_valid_until,
    )


def key(row: Row[Any]) -> KeyRecord:
    """The key a ``signing_keys`` row holds."""
    return KeyRecord(
        kid=row.kid,
        alg=row.alg,
        public_jwk=row.public_jwk,
        private_key=bytes(row.private_key),
        created_at=row.created_at,
        not_before=row.not_before,
    )


def key_values(key: KeyRecord) -> dict[str, Any]:
    """The ``signing_keys`` row of a key."""
    return {
        "kid": key.kid,
        "alg": key.alg,
        "public_jwk": key.public_jwk,
        "private_key": key.private_key,
        "created_at": key.created_at,
        "not_before": key.not_before,
    }


def sorted_keys(rows: Iterable[Row[Any]]) -> list[KeyRecord]:
    """Keys oldest ``not_before`` first, ties by kid (code point order on every backend)."""
    return sorted((key(row) for row in rows), key=lambda k: (k.not_before, k.kid))


def refresh_values(token: RefreshToken) -> dict[str, Any]:
    """The ``refresh_tokens`` row of a refresh token."""
    return {
        "token_hash": token.token_hash,
        "family_id": token.family_id,
        "subject": token.subject,
        "client_id": token.client_id,
        "scopes": join(token.scopes, "scopes"),
        "audience": token.audience,
        "issued_at": token.issued_at,
        "expires_at": token.expires_at,
        "access_jti": token.access_jti,
        "access_expires_at": token.access_expires_at,
        "used": token.used,
        "revoked": token.revoked,
    }


def refresh_token(row: Row[Any]) -> RefreshToken:
    """The refresh token a ``refresh_tokens`` row joined with its family holds."""
    return RefreshToken(
        token_hash=row.token_hash,
        family_id=row.family_id,
        subject=row.subject,
        client_id=row.client_id,
        scopes=_split(row.scopes),
        audience=row.audience,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        access_jti=row.access_jti,
        access_expires_at=row.access_expires_at,
        used=bool(row.used),
        revoked=bool(row.family_revoked),
        account_id=row.account_id,
        started_at=row.started_at,
    )


def revocation(row: Row[Any]) -> Revocation:
    """The revocation a ``revocations`` row holds."""
    return Revocation(
        sequence=row.sequence,
        jti=row.jti,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        kind=RevocationKind(row.kind),
        target=row.target,
        not_before=row.not_before,
    )


def throttle(row: Row[Any]) -> Throttle:
    """The throttle a ``throttles`` row holds (its columns are the record's fields)."""
    return Throttle(**{name: value for name, value in row._mapping.items()})


def find_refresh_token(conn: Connection, token_hash: str) -> RefreshToken | None:
    """The refresh token with this hash, with its family's account, start and flag."""
    family = refresh_families.c
    query = (
        select(
            refresh_tokens,
            family.account_id,
            family.started_at,
            family.revoked.label("family_revoked"),
        )
        .join(refresh_families, family.family_id == refresh_tokens.c.family_id)
        .where(refresh_tokens.c.token_hash == token_hash)
    )
    row = conn.execute(query).first()
    return None if row is None else refresh_token(row)


def find_revocation(conn: Connection, jti: str) -> Revocation | None:
    """The revocation of ``jti``, or None."""
    row = conn.execute(select(revocations).where(revocations.c.jti == jti)).first()
    return None if row is None else revocation(row)


def append_revocation(
    conn: Connection,
    jti: str,
    expires_at: int,
    now: int,
    *,
    kind: RevocationKind = RevocationKind.TOKEN,
    target: str = "",
    not_before: int = 0,
) -> Revocation:
    """Insert a revocation and return it with the sequence the database drew.

    A family or subject entry gets a fresh random ``jti`` when given "". The caller
    holds the revocations lock.
    """
    entry = Revocation(
        sequence=0,
        jti=jti or new_id(),
        expires_at=expires_at,
        revoked_at=now,
        kind=kind,
        target=target,
        not_before=not_before,
    )
    values = {
        "jti": entry.jti,
        "expires_at": expires_at,
        "revoked_at": now,
        "kind": kind.value,
        "target": target,
        "not_before": not_before,
    }
    key = conn.execute(insert(revocations).values(values)).inserted_primary_key
    if key is None:  # lastrowid on SQLite, RETURNING on PostgreSQL
        raise StoreError("the database did not report the revocation's sequence")
    return replace(entry, sequence=int(key[0]))
