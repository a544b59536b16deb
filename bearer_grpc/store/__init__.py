"""Persistence of the token service: accounts, signing keys, refresh tokens, revocations.

:class:`Store` is the one interface the service depends on; tests use
:class:`TestableStore`, which adds a few methods to set up and probe a store.
:class:`SqlStore` implements both, on SQLite (embedded, the default: :func:`sqlite_url`
names the file in a data directory) or on PostgreSQL (shared by several replicas).
:func:`open_store` opens either from a URL and migrates its schema; the URL's scheme alone
decides which (:func:`is_postgres_url` asks)::

    store = open_store(sqlite_url(Path("bearer-grpc-data")))
    store = open_store("postgresql://tokens@db.internal/tokens")

Every method is one transaction. A committed revocation or new key wakes the
:class:`ChangeListener` of every process sharing a PostgreSQL store (``LISTEN/NOTIFY``),
or of this process on SQLite. Failures raise :class:`StoreError`, or its subclasses
:class:`StoreUnavailable` (retry later; nothing was written) and :class:`AlreadyExists`.
"""

from bearer_grpc.store._backup import backup_sqlite, sqlite_path
from bearer_grpc.store._engine import DATABASE_FILENAME, is_postgres_url, open_store, sqlite_url
from bearer_grpc.store._errors import AlreadyExists, StoreError, StoreUnavailable
from bearer_grpc.store._interface import Store, TestableStore
from bearer_grpc.store._notify import ChangeListener
from bearer_grpc.store._records import (
    Account,
    AccountClaim,
    AccountKind,
    AuditEvent,
    KeyRecord,
    RefreshToken,
    Revocation,
    Rotation,
    RotationStatus,
    Throttle,
)
from bearer_grpc.store._sql import SqlStore

__all__ = [
    "DATABASE_FILENAME",
    "Account",
    "AccountClaim",
    "AccountKind",
    "AlreadyExists",
    "AuditEvent",
    "ChangeListener",
    "KeyRecord",
    "RefreshToken",
    "Revocation",
    "Rotation",
    "RotationStatus",
    "SqlStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TestableStore",
    "Throttle",
    "backup_sqlite",
    "is_postgres_url",
    "open_store",
    "sqlite_path",
    "sqlite_url",
]
