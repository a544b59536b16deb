"""The tables of the SQL store, in SQLAlchemy Core, for SQLite and PostgreSQL alike.

Only portable types: ``BigInteger`` for epoch seconds, ``Text`` for names and JSON,
``LargeBinary`` for private keys, ``Boolean`` for flags. Scope and audience lists are
stored space-joined (RFC 6749 scope tokens contain no spaces).

This module describes the *current* schema. The database gets there through the numbered
steps in ``_migrations``; change a table here only together with a new step there. A new
kind of revocation needs a step too, so that an older release refuses the database
instead of misreading its revocation log.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    false,
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
    # Version 2: the account's identity (a name created again is a new account), and
    # whether a client's tokens are bound to its certificate.
    Column("id", Text, nullable=False, server_default=""),
    Column("certificate_bound", Boolean, nullable=False, server_default=false()),
    # Version 3: a client's secret before its last rotation, accepted until a deadline.
    Column("previous_credential_hash", Text, nullable=False, server_default=""),
    Column("previous_valid_until", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("kind IN ('client', 'user')", name="kind"),
)
accounts_id = Index("ix_accounts_id", accounts.c.id, unique=True)

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
    # "" since version 2: access tokens name their family (sid) instead.
    Column("access_jti", Text, nullable=False),
    Column("access_expires_at", BigInteger, nullable=False),
    Column("used", Boolean, nullable=False),
    # Unused since version 2 (the family's flag counts); kept for the rows before it.
    Column("revoked", Boolean, nullable=False),
)

refresh_families = Table(
    "refresh_families",
    metadata,
    # Version 2: one row per login. Revoking a family changes this row only.
    Column("family_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False, index=True),
    Column("subject", Text, nullable=False, index=True),
    Column("started_at", BigInteger, nullable=False),
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
    # A token's jti; for the other kinds a random id of the entry.
    Column("jti", Text, nullable=False, unique=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("revoked_at", BigInteger, nullable=False),
    # Version 2: what the entry revokes (core.verification.RevocationKind), the family or
    # subject it names, and for a subject the time up to which its tokens are revoked.
    Column("kind", Text, nullable=False, server_default="token"),
    Column("target", Text, nullable=False, server_default=""),
    Column("not_before", BigInteger, nullable=False, server_default="0"),
    sqlite_autoincrement=True,
)
revocations_target = Index("ix_revocations_target", revocations.c.target)

throttles = Table(
    "throttles",
    metadata,
    # Version 2: failed sign-ins, by an opaque key (see ``Throttle``).
    Column("key", Text, primary_key=True),
    Column("failures", BigInteger, nullable=False),
    Column("blocked_until", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False, index=True),
    Column("known_until", BigInteger, nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    # Version 3: the audit trail, one row per change, written in the change's transaction.
    Column(
        "sequence",
        BigInteger().with_variant(Integer(), "sqlite"),
        Identity(always=True),
        primary_key=True,
    ),
    Column("at", BigInteger, nullable=False, index=True),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
    # A JSON object of further facts (never a secret).
    Column("detail", Text, nullable=False),
    sqlite_autoincrement=True,
)

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
)
