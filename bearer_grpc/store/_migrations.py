"""Numbered schema migrations, applied when a store opens.

``migrate`` runs inside the caller's write transaction: all pending steps and their
``schema_migrations`` rows commit together or not at all. Several processes may open the
same database at once; the first to take the dialect's ``"migrations"`` lock applies the
steps, the others then find nothing left to do.

A database whose version is newer than the last step here was written by a newer release;
it is refused rather than used with a schema this code does not know.

To change the schema, append a step and never edit a released one. Step 1 builds its
tables from ``_schema``; when step 2 arrives, freeze step 1 as the DDL of version 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select

from bearer_grpc.store import _schema
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
    tables = [t for t in _schema.metadata.sorted_tables if t is not _schema.schema_migrations]
    _schema.metadata.create_all(conn, tables=tables, checkfirst=False)


MIGRATIONS: tuple[Migration, ...] = (Migration(1, "create tables", _create_tables),)
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
