"""The account methods of ``SqlStore``: clients and users, their credentials, revoking a subject.

A part of ``SqlStore``; see ``_families`` for the subject locks.

Every change takes an optional :class:`AuditEvent`, written in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import Connection, insert, select, update

from bearer_grpc.store import _audit, _families, _rows
from bearer_grpc.store._records import (
    Account,
    AccountClaim,
    AccountKind,
    AuditEvent,
    Revocation,
)
from bearer_grpc.store._schema import accounts
from bearer_grpc.store._sql_keys import Transactions


class AccountMethods(Transactions):
    """The account methods of :class:`~bearer_grpc.store.SqlStore`."""

    def add_account(self, account: Account, *, audit: AuditEvent | None = None) -> None:
        """Insert an account (and its audit event, in the same transaction).

        Args:
            account: The new account. Scopes and audiences must be free of whitespace.
            audit: The event to write with it, if any.

        Raises:
            AlreadyExists: The name is taken, by a client or a user.
            ValueError: A scope or audience is empty or contains whitespace.
        """
        values = _rows.account_values(account)
        with self._write(f"account {account.name!r} already exists") as conn:
            conn.execute(insert(accounts).values(values))
            _audit.write(conn, audit)

    def get_account(self, name: str, kind: AccountKind) -> Account | None:
        """The account of that name and kind (with its name's not-before), or None."""
        with self._read() as conn:
            return _families.read_account(conn, name, kind)

    def list_accounts(self, kind: AccountKind) -> list[Account]:
        """All accounts of a kind, ordered by name (code point order on every backend)."""
        with self._read() as conn:
            rows = conn.execute(select(accounts).where(accounts.c.kind == kind.value)).all()
        # Sorted here, not by ORDER BY: PostgreSQL would sort by the database's collation.
        return sorted((_rows.account(row) for row in rows), key=lambda p: p.name)

    def update_account(
        self,
        name: str,
        kind: AccountKind,
        *,
        scopes: Sequence[str],
        audiences: Sequence[str],
        audit: AuditEvent | None = None,
    ) -> Account | None:
        """Replace an account's scopes and audiences; the account as it is now, or None.

        None (nothing written) if there is no such account.

        Raises:
            ValueError: A scope or audience is empty or contains whitespace.
        """
        values = {
            "scopes": _rows.join(scopes, "scopes"),
            "audiences": _rows.join(audiences, "audiences"),
        }
        return self._change(name, kind, values, audit)

    def set_credential(
        self,
        name: str,
        kind: AccountKind,
        credential_hash: str,
        *,
        previous_valid_until: int = 0,
        audit: AuditEvent | None = None,
    ) -> Account | None:
        """Replace an account's credential hash; the account as it is now, or None.

        None (nothing written) if there is no such account.

        Args:
            name: The account.
            kind: Its kind.
            credential_hash: The new credential's hash.
            previous_valid_until: When above 0, the current credential is kept as the
                previous one, accepted until then; otherwise any previous one is dropped.
            audit: The event to write with it, if any.
        """
        query = select(accounts.c.credential_hash).where(
            accounts.c.name == name, accounts.c.kind == kind.value
        )
        with self._write() as conn:
            current = conn.execute(query).scalar()
            if current is None:
                return None
            keep = previous_valid_until > 0
            values = {
                "credential_hash": credential_hash,
                "previous_credential_hash": current if keep else "",
                "previous_valid_until": previous_valid_until if keep else 0,
            }
            return self._changed(conn, name, kind, values, audit)

    def _change(
        self, name: str, kind: AccountKind, values: Mapping[str, object], audit: AuditEvent | None
    ) -> Account | None:
        with self._write() as conn:
            return self._changed(conn, name, kind, values, audit)

    @staticmethod
    def _changed(
        conn: Connection,
        name: str,
        kind: AccountKind,
        values: Mapping[str, object],
        audit: AuditEvent | None,
    ) -> Account | None:
        where = (accounts.c.name == name, accounts.c.kind == kind.value)
        if not conn.execute(update(accounts).where(*where).values(values)).rowcount:
            return None
        _audit.write(conn, audit)
        row = conn.execute(select(accounts).where(*where)).one()
        return _rows.account(row, _families.subject_not_before(conn, name))

    def remove_account(
        self,
        name: str,
        kind: AccountKind,
        *,
        clock: Callable[[], int],
        retention: int,
        audit: AuditEvent | None = None,
    ) -> Revocation | None:
        """Delete an account and its refresh families, and revoke its name's tokens.

        See :meth:`revoke_subject`; ``clock`` is read once the subject is locked.

        Returns:
            The subject's revocation, or None if there was no such account (nothing is
            written then, not even ``audit``).
        """
        with self._write() as conn:
            revocation = _families.revoke_subject(
                conn, self._dialect, name, clock=clock, retention=retention, remove=kind
            )
            if revocation is not None:
                _audit.write(conn, audit)
            return revocation

    def revoke_subject(
        self,
        name: str,
        *,
        clock: Callable[[], int],
        retention: int,
        audit: AuditEvent | None = None,
    ) -> Revocation:
        """Revoke every token of ``name`` issued until now, and its refresh families.

        Args:
            name: The subject (``sub``).
            clock: Read once the subject is locked against every grant: tokens issued at
                or before that time are revoked.
            retention: Seconds the revocation is kept (the longest access-token life).
            audit: The event to write with it, if any.

        Returns:
            The revocation written (a new one every time).
        """
        with self._write() as conn:
            revocation = _families.revoke_subject(
                conn, self._dialect, name, clock=clock, retention=retention, remove=None
            )
            _audit.write(conn, audit)
        assert revocation is not None  # always written without ``remove``
        return revocation

    def confirm_accounts(self, claims: Sequence[AccountClaim]) -> list[Account | None]:
        """The account each grant was signed for, as it is now, decided under their names' locks.

        See :meth:`Store.confirm_accounts`. A token signed before the answer named its
        account is ordered before any later removal or revocation of the subject: its
        ``iat`` is at or before their not-before.
        """
        with self._write() as conn:
            return _families.confirm(conn, self._dialect, claims)
