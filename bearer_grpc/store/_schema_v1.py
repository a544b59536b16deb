"""Schema version 1, frozen: the tables the first migration step creates.

Never edit this module: databases at version 1 were built from it, and every later step
starts from exactly these tables. The current schema is in ``_schema``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Identity,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)

# Deterministic constraint names, so later migration steps can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = Table(
    "accounts",
    metadata,
    # One namespace for clients and users: the name alone is the key.
    Column("name", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("credential_hash", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("audiences", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    CheckConstraint("kind IN ('client', 'user')", name="kind"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", Text, primary_key=True),
    Column("alg", Text, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("private_key", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("not_before", BigInteger, nullable=False),
)

settings = Table(
    "settings",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("family_id", Text, nullable=False, index=True),
    Column("subject", Text, nullable=False, index=True),
    Column("client_id", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("audience", Text, nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("access_jti", Text, nullable=False),
    Column("access_expires_at", BigInteger, nullable=False),
    Column("used", Boolean, nullable=False),
    Column("revoked", Boolean, nullable=False),
)

revocations = Table(
    "revocations",
    metadata,
    # The log position watchers resume from. SQLite: INTEGER PRIMARY KEY AUTOINCREMENT, so a
    # pruned maximum is never handed out again; PostgreSQL: a BIGINT identity column.
    Column(
        "sequence",
        BigInteger().with_variant(Integer(), "sqlite"),
        Identity(always=True),
        primary_key=True,
    ),
    Column("jti", Text, nullable=False, unique=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("revoked_at", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)
