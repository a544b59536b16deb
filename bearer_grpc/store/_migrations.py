"""Numbered schema migrations, applied when a store opens.

``migrate`` runs inside the caller's write transaction: all pending steps and their
``schema_migrations`` rows commit together or not at all. Several processes may open the
same database at once; the first to take the dialect's ``"migrations"`` lock applies the
steps, the others then find nothing left to do.

A database whose version is newer than the last step here was written by a newer release;
it is refused rather than used with a schema this code does not know.

To change the schema, append a step and never edit a released one. Step 1 builds the
tables of version 1, frozen in ``_schema_v1``; steps 2 and 3 change them into today's
``_schema``, each building only the columns and tables it names from there. A later step
that changes one of those must first freeze it as it stood (as ``_schema_v1`` does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Column, Connection, func, insert, select, text, update
from sqlalchemy.schema import CreateColumn

from bearer_grpc.core.secrets import new_id
from bearer_grpc.store import _schema, _schema_v1
from bearer_grpc.store._dialect import Dialect
from bearer_grpc.store._errors import StoreError


@dataclass(frozen=True)
class Migration:
    """One step of the schema history.

    Attributes:
        version: The schema version this step produces (1, 2, ... without gaps).
        description: What the step does, recorded in ``schema_migrations``.
        apply: Runs the step's DDL on a connection inside the migration transaction.
    """

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_tables(conn: Connection) -> None:
    _schema_v1.metadata.create_all(conn, checkfirst=False)


def _add_column(conn: Connection, column: Column[object]) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for a column of ``_schema`` (with its default)."""
    spec = CreateColumn(column).compile(dialect=conn.dialect)
    table = conn.dialect.identifier_preparer.format_table(column.table)
    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {spec}"))


def _identities_families_kinds_throttles(conn: Connection) -> None:
    """Version 2: account ids, refresh families as rows, revocation kinds, throttles."""
    accounts, revocations = _schema.accounts, _schema.revocations
    for column in (
        accounts.c.id,
        accounts.c.certificate_bound,
        revocations.c.kind,
        revocations.c.target,
        revocations.c.not_before,
    ):
        _add_column(conn, column)
    ids: dict[tuple[str, str], str] = {}
    for name, kind in conn.execute(select(accounts.c.name, accounts.c.kind)).all():
        ids[name, kind] = new_id()
        conn.execute(update(accounts).where(accounts.c.name == name).values(id=ids[name, kind]))
    _schema.accounts_id.create(conn)
    _schema.revocations_target.create(conn)
    _schema.refresh_families.create(conn)
    _schema.throttles.create(conn)
    # Every existing family belongs to the user of its subject's name, as it is now.
    tokens = _schema.refresh_tokens.c
    subjects: dict[str, str] = {}
    started: dict[str, int] = {}
    revoked: set[str] = set()
    rows = conn.execute(select(tokens.family_id, tokens.subject, tokens.issued_at, tokens.revoked))
    for family_id, subject, issued_at, was_revoked in rows.all():
        subjects[family_id] = subject
        started[family_id] = min(issued_at, started.get(family_id, issued_at))
        if was_revoked:
            revoked.add(family_id)
    families = [
        {
            "family_id": family_id,
            "account_id": ids.get((subject, "user"), ""),
            "subject": subject,
            "started_at": started[family_id],
            "revoked": family_id in revoked,
        }
        for family_id, subject in subjects.items()
    ]
    if families:
        conn.execute(insert(_schema.refresh_families), families)


def _rotation_overlap_audit_trail(conn: Connection) -> None:
    """Version 3: a client's previous secret with its deadline; the audit trail."""
    accounts = _schema.accounts
    for column in (accounts.c.previous_credential_hash, accounts.c.previous_valid_until):
        _add_column(conn, column)
    _schema.audit_events.create(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create tables", _create_tables),
    Migration(
        2,
        "account ids, refresh families, revocation kinds, throttles",
        _identities_families_kinds_throttles,
    ),
    Migration(3, "previous client secrets, audit trail", _rotation_overlap_audit_trail),
)
LATEST_VERSION = MIGRATIONS[-1].version


def migrate(conn: Connection, dialect: Dialect) -> int:
    """Apply every pending step, inside the caller's write transaction.

    Args:
        conn: A connection inside the dialect's write transaction.
        dialect: The database's dialect, whose ``"migrations"`` lock the steps run under.

    Returns:
        The schema version of the database afterwards (``LATEST_VERSION``).

    Raises:
        StoreError: The database was written by a newer release (its version is unknown here).
    """
    dialect.lock(conn, "migrations")
    _schema.schema_migrations.create(conn, checkfirst=True)
    version_column = _schema.schema_migrations.c.version
    current = conn.scalar(select(func.coalesce(func.max(version_column), 0))) or 0
    if current > LATEST_VERSION:
        raise StoreError(
            f"database schema version {current} is newer than this release of bearer-grpc "
            f"supports (up to {LATEST_VERSION}); upgrade bearer-grpc"
        )
    for step in MIGRATIONS:
        if step.version > current:
            step.apply(conn)
            conn.execute(
                insert(_schema.schema_migrations).values(
                    version=step.version, description=step.description
                )
            )
    return LATEST_VERSION
