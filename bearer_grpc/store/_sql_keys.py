"""The store's transactions, and its signing-key methods (a part of ``SqlStore``).

:class:`Transactions` begins the dialect's read and write transactions with driver errors
translated; :class:`KeyMethods` adds the methods on signing keys, which run under the
dialect's ``("keys",)`` lock where they decide from the stored set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, delete, insert, select, update

from bearer_grpc.store import _audit, _notify, _rows
from bearer_grpc.store._dialect import Dialect
from bearer_grpc.store._records import AuditEvent, KeyRecord
from bearer_grpc.store._schema import signing_keys
from bearer_grpc.store._translate import translated_errors


class Transactions:
    """Read and write transactions on one dialect, driver errors translated."""

    _dialect: Dialect

    @contextmanager
    def _write(self, conflict: str = "row already exists") -> Iterator[Connection]:
        with translated_errors(self._dialect, conflict), self._dialect.write() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with translated_errors(self._dialect, "row already exists"), self._dialect.read() as conn:
            yield conn


class KeyMethods(Transactions):
    """The signing-key methods of :class:`~bearer_grpc.store.SqlStore`."""

    def add_key(self, key: KeyRecord) -> None:
        """Insert a key as it is (for tests: the service adds keys with :meth:`add_key_if`).

        Raises:
            AlreadyExists: A key with that kid exists.
        """
        with self._write(f"key {key.kid!r} already exists") as conn:
            conn.execute(insert(signing_keys).values(_rows.key_values(key)))
            self._dialect.announce(conn, _notify.KEY, 0)

    def add_key_if(
        self,
        decide: Callable[[list[KeyRecord]], KeyRecord | None],
        *,
        audit: AuditEvent | None = None,
    ) -> KeyRecord | None:
        """Add the key ``decide`` returns after seeing every stored key, one caller at a time.

        ``decide`` runs inside the write transaction, holding the store's keys lock, so
        that two processes never decide from the same set of keys (both staging a
        scheduled rotation, or both taking the same ``not_before``). It must be quick and
        must not touch the store.

        Args:
            decide: Gets every key (ordered as :meth:`list_keys`); returns the record to
                insert, or None to insert nothing.
            audit: The event to write if a key is inserted.

        Returns:
            The inserted record, or None.

        Raises:
            AlreadyExists: A key with the returned kid exists.
        """
        with self._write("key already exists") as conn:
            self._dialect.lock(conn, "keys")
            chosen = decide(_rows.sorted_keys(conn.execute(select(signing_keys)).all()))
            if chosen is not None:
                conn.execute(insert(signing_keys).values(_rows.key_values(chosen)))
                _audit.write(conn, audit)
                self._dialect.announce(conn, _notify.KEY, 0)
        return chosen

    def list_keys(self) -> list[KeyRecord]:
        """All keys, oldest ``not_before`` first (ties by kid, code point order)."""
        with self._read() as conn:
            return _rows.sorted_keys(conn.execute(select(signing_keys)).all())

    def delete_key(self, kid: str) -> bool:
        """Delete a key. True if it existed."""
        with self._write() as conn:
            deleted = conn.execute(delete(signing_keys).where(signing_keys.c.kid == kid)).rowcount
        return deleted > 0

    def remove_key_if(
        self,
        kid: str,
        decide: Callable[[KeyRecord], bool],
        *,
        audit: AuditEvent | None = None,
    ) -> KeyRecord | None:
        """Delete the key ``kid`` if ``decide(its record)`` says so, under the keys lock.

        ``audit`` is written with it.

        Returns:
            The deleted record, or None (no such key, or ``decide`` said no).
        """
        with self._write() as conn:
            self._dialect.lock(conn, "keys")
            row = conn.execute(select(signing_keys).where(signing_keys.c.kid == kid)).first()
            if row is None or not decide(_rows.key(row)):
                return None
            conn.execute(delete(signing_keys).where(signing_keys.c.kid == kid))
            _audit.write(conn, audit)
            self._dialect.announce(conn, _notify.KEY, 0)
            return _rows.key(row)

    def update_keys(
        self,
        change: Callable[[list[KeyRecord]], list[KeyRecord]],
        *,
        audit: Callable[[KeyRecord], AuditEvent] | None = None,
    ) -> list[KeyRecord]:
        """Replace the private key of the records ``change(every stored key)`` returns.

        The decision, the updates and their audit events (``audit(record)`` for each) are
        one transaction under the keys lock; only ``private_key`` is written.

        Returns:
            The records written.
        """
        with self._write() as conn:
            self._dialect.lock(conn, "keys")
            changed = change(_rows.sorted_keys(conn.execute(select(signing_keys)).all()))
            for record in changed:
                conn.execute(
                    update(signing_keys)
                    .where(signing_keys.c.kid == record.kid)
                    .values(private_key=record.private_key)
                )
                if audit is not None:
                    _audit.write(conn, audit(record))
        return changed
