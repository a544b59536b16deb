"""The Store in SQL, through SQLAlchemy Core: the queries and transactions.

Every database runs the same statements. What differs between them (the engine, how
transactions begin and announce their changes, the named locks, insert-or-ignore, what a
driver error means) is asked of the store's dialect (``_dialect``; one module per
database). Driver errors become the store's exceptions in ``_translate``.

Where rows alone cannot protect an invariant, a method takes one of the dialect's named
locks, held until the transaction ends (an advisory lock on PostgreSQL, which runs READ
COMMITTED; nothing on SQLite, whose write transactions exclude each other already):

- ``("subject", name)``: every change to a subject's refresh-token families, and the
  removal of that account. Row locks cannot stop a concurrent rotation from inserting
  a successor that a family revocation's UPDATE does not see; this lock can.
- ``("revocations",)``: taken before a revocation row draws its sequence number and held
  until commit, so sequence order is commit order and a watcher that resumes after
  sequence N can never miss a row that commits late.
- ``("keys",)``: held by :meth:`SqlStore.add_key_if` while it reads the keys and adds one,
  so one rotator at a time decides from the current set (two replicas cannot both stage
  a scheduled rotation).

Lock order is always subject, then rows, then revocations, so they cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from sqlalchemy import ColumnElement, Connection, delete, insert, literal, select, update

from bearer_grpc.store import _migrations, _notify, _rows
from bearer_grpc.store._dialect import Dialect
from bearer_grpc.store._errors import AlreadyExists
from bearer_grpc.store._interface import TestableStore
from bearer_grpc.store._notify import ChangeListener
from bearer_grpc.store._records import (
    Account,
    AccountKind,
    KeyRecord,
    RefreshToken,
    Revocation,
    Rotation,
    RotationStatus,
)
from bearer_grpc.store._schema import (
    accounts,
    refresh_tokens,
    revocations,
    settings,
    signing_keys,
)
from bearer_grpc.store._translate import translated_errors


class SqlStore(TestableStore):
    """The :class:`Store` on SQLite or PostgreSQL, with the extras of :class:`TestableStore`.

    Build one with :func:`open_store`, which picks the dialect from the URL. Every method
    is one transaction, and is safe to call from several threads and several processes at
    once.
    """

    def __init__(self, dialect: Dialect) -> None:
        """Run on a database and bring its schema up to date.

        Args:
            dialect: The database's dialect, with its engine (see :func:`open_store`).

        Raises:
            StoreError: The database schema is newer than this release knows.
            StoreUnavailable: The database cannot be reached or stays locked.
        """
        self._dialect = dialect
        with self._write() as conn:
            _migrations.migrate(conn, dialect)

    def __repr__(self) -> str:
        url = self._dialect.engine.url  # never rendered: its password or query may hold secrets
        host = f", host={url.host!r}" if url.host else ""
        return f"SqlStore(backend={url.get_backend_name()!r}{host}, database={url.database!r})"

    @contextmanager
    def _write(self, conflict: str = "row already exists") -> Iterator[Connection]:
        with translated_errors(self._dialect, conflict), self._dialect.write() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with translated_errors(self._dialect, "row already exists"), self._dialect.read() as conn:
            yield conn

    # -- accounts ------------------------------------------------------------------

    def add_account(self, account: Account) -> None:
        """Insert an account.

        Args:
            account: The new account. Scopes and audiences must be free of whitespace.

        Raises:
            AlreadyExists: The name is taken, by a client or a user.
            ValueError: A scope or audience is empty or contains whitespace.
        """
        values = _rows.account_values(account)
        with self._write(f"account {account.name!r} already exists") as conn:
            conn.execute(insert(accounts).values(values))

    def get_account(self, name: str, kind: AccountKind) -> Account | None:
        """The account of that name and kind, or None."""
        query = select(accounts).where(accounts.c.name == name, accounts.c.kind == kind.value)
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _rows.account(row)

    def list_accounts(self, kind: AccountKind) -> list[Account]:
        """All accounts of a kind, ordered by name (code point order on every backend)."""
        with self._read() as conn:
            rows = conn.execute(select(accounts).where(accounts.c.kind == kind.value)).all()
        # Sorted here, not by ORDER BY: PostgreSQL would sort by the database's collation.
        return sorted((_rows.account(row) for row in rows), key=lambda p: p.name)

    def remove_account(self, name: str, kind: AccountKind) -> bool:
        """Delete an account and the refresh tokens whose subject it is.

        Returns:
            True if it existed.
        """
        with self._write() as conn:
            self._dialect.lock(conn, "subject", name)
            removed = conn.execute(
                delete(accounts).where(accounts.c.name == name, accounts.c.kind == kind.value)
            ).rowcount
            if removed:
                conn.execute(delete(refresh_tokens).where(refresh_tokens.c.subject == name))
        return removed > 0

    # -- keys ----------------------------------------------------------------------------

    def add_key(self, key: KeyRecord) -> None:
        """Insert a key as it is (for tests: the service adds keys with :meth:`add_key_if`).

        Raises:
            AlreadyExists: A key with that kid exists.
        """
        with self._write(f"key {key.kid!r} already exists") as conn:
            conn.execute(insert(signing_keys).values(_rows.key_values(key)))
            self._dialect.announce(conn, _notify.KEY, 0)

    def add_key_if(self, decide: Callable[[list[KeyRecord]], KeyRecord | None]) -> KeyRecord | None:
        """Add the key ``decide`` returns after seeing every stored key, one caller at a time.

        ``decide`` runs inside the write transaction, holding the store's keys lock, so
        that two processes never decide from the same set of keys (both staging a
        scheduled rotation, or both taking the same ``not_before``). It must be quick and
        must not touch the store.

        Args:
            decide: Gets every key (ordered as :meth:`list_keys`); returns the record to
                insert, or None to insert nothing.

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

    # -- settings ------------------------------------------------------------------------

    def get_or_create_setting(self, name: str, value: str) -> str:
        """Return the stored value of a setting, storing ``value`` first if absent (atomic)."""
        with self._write() as conn:
            conn.execute(
                self._dialect.insert_ignore(settings, {"name": name, "value": value}, key="name")
            )
            query = select(settings.c.value).where(settings.c.name == name)
            stored: str = conn.execute(query).scalar_one()
        return stored

    # -- refresh tokens ------------------------------------------------------------------

    def add_refresh_token(self, token: RefreshToken) -> None:
        """Insert the first refresh token of a family.

        Raises:
            AlreadyExists: A refresh token with that hash exists.
        """
        values = _rows.refresh_values(token)
        with self._write("refresh token already exists") as conn:
            conn.execute(insert(refresh_tokens).values(values))

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        """The refresh token with this hash, or None."""
        with self._read() as conn:
            return _rows.find_refresh_token(conn, token_hash)

    def rotate_refresh_token(self, token_hash: str, successor: RefreshToken, now: int) -> Rotation:
        """Exchange a refresh token atomically (see :meth:`Store.rotate_refresh_token`).

        The successor is stored as a current token (``used`` and ``revoked`` false) with
        the family, subject, client, scopes and audience of the presented one.

        Raises:
            AlreadyExists: The successor's hash is taken; nothing changed.
        """
        with self._write("refresh token already exists") as conn:
            found = _rows.find_refresh_token(conn, token_hash)
            if found is None:
                return Rotation(RotationStatus.INVALID, None)
            self._dialect.lock(conn, "subject", found.subject)
            previous = _rows.find_refresh_token(conn, token_hash, for_update=True)
            if previous is None:  # deleted meanwhile (account removed, or pruned)
                return Rotation(RotationStatus.INVALID, None)
            if previous.revoked:
                return Rotation(RotationStatus.INVALID, previous)
            if previous.used:
                written = self._revoke_family(conn, previous.family_id, now)
                return Rotation(RotationStatus.REUSED, previous, written)
            if previous.expires_at <= now:
                return Rotation(RotationStatus.INVALID, previous)
            conn.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.token_hash == token_hash)
                .values(used=True)
            )
            stored = replace(
                successor,
                family_id=previous.family_id,
                subject=previous.subject,
                client_id=previous.client_id,
                scopes=previous.scopes,
                audience=previous.audience,
                used=False,
                revoked=False,
            )
            conn.execute(insert(refresh_tokens).values(_rows.refresh_values(stored)))
            return Rotation(RotationStatus.ROTATED, previous)

    def revoke_refresh_family(self, token_hash: str, now: int) -> tuple[Revocation, ...] | None:
        """Revoke the family of the token with this hash, as REUSED does.

        Returns:
            The access-token revocations newly written (none when called again), or None if
            no refresh token has that hash.
        """
        with self._write() as conn:
            found = _rows.find_refresh_token(conn, token_hash)
            if found is None:
                return None
            self._dialect.lock(conn, "subject", found.subject)
            return self._revoke_family(conn, found.family_id, now)

    # -- revocations ---------------------------------------------------------------------

    def revoke(self, jti: str, expires_at: int, now: int) -> Revocation:
        """Record a revocation; idempotent: an existing one for ``jti`` is returned as is."""
        try:
            with self._write() as conn:
                self._dialect.lock(conn, "revocations")
                existing = _rows.find_revocation(conn, jti)
                if existing is not None:
                    return existing
                revocation = _rows.append_revocation(conn, jti, expires_at, now)
                self._dialect.announce(conn, _notify.REVOCATION, revocation.sequence)
                return revocation
        except AlreadyExists:
            # Lost an insert race to a writer that did not take the lock: use its row.
            with self._read() as conn:
                existing = _rows.find_revocation(conn, jti)
            if existing is None:
                raise
            return existing

    def revocations_after(self, sequence: int, limit: int = 1000) -> list[Revocation]:
        """Revocations with a larger sequence, ascending, at most ``limit``.

        Raises:
            ValueError: ``limit`` is less than 1.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        return self._revocations(revocations.c.sequence > sequence, limit)

    def active_revocations(self, now: int) -> list[Revocation]:
        """Revocations whose token has not yet expired at ``now``, ascending (for tests)."""
        return self._revocations(revocations.c.expires_at > now)

    def _revocations(
        self, condition: ColumnElement[bool], limit: int | None = None
    ) -> list[Revocation]:
        query = select(revocations).where(condition).order_by(revocations.c.sequence).limit(limit)
        with self._read() as conn:
            return [_rows.revocation(row) for row in conn.execute(query)]

    # -- housekeeping ----------------------------------------------------------------------

    def prune(self, now: int) -> int:
        """Delete revocations and refresh tokens that expired before ``now``.

        A refresh token is kept while the access token issued with it is still valid, so
        that revoking its family can still revoke that access token.

        Returns:
            The number of rows removed.
        """
        with self._write() as conn:
            removed = conn.execute(
                delete(revocations).where(revocations.c.expires_at < now)
            ).rowcount
            removed += conn.execute(
                delete(refresh_tokens).where(
                    refresh_tokens.c.expires_at < now,
                    refresh_tokens.c.access_expires_at < now,
                )
            ).rowcount
        return removed

    def ping(self) -> None:
        """Return once the store answers (for tests).

        Raises:
            StoreUnavailable: The store cannot be reached.
        """
        with self._read() as conn:
            conn.execute(select(literal(1)))

    def change_listener(self) -> ChangeListener:
        """A listener woken by every revocation and new key committed (see ``_notify``).

        On PostgreSQL: by any process, through a ``LISTEN`` connection of its own. On
        SQLite: by this process only (others are seen by polling).
        """
        return self._dialect.listener()

    def close(self) -> None:
        """Release connections. The store reconnects if used again."""
        self._dialect.engine.dispose()

    def _revoke_family(self, conn: Connection, family_id: str, now: int) -> tuple[Revocation, ...]:
        """Mark a family revoked and revoke every access token issued with it.

        Expired ones too: verifiers accept a token up to their leeway past ``exp``, which the
        store does not know; the revocations of long-expired tokens are pruned as usual.

        The caller holds the family's subject lock. Returns the revocations newly written.
        """
        family = refresh_tokens.c.family_id == family_id
        conn.execute(update(refresh_tokens).where(family).values(revoked=True))
        access = conn.execute(
            select(refresh_tokens.c.access_jti, refresh_tokens.c.access_expires_at)
            .where(family)
            .order_by(refresh_tokens.c.issued_at)
        ).all()
        if not access:
            return ()
        self._dialect.lock(conn, "revocations")
        written: dict[str, Revocation] = {}
        for jti, expires_at in access:
            if jti not in written and _rows.find_revocation(conn, jti) is None:
                written[jti] = _rows.append_revocation(conn, jti, expires_at, now)
        if written:
            self._dialect.announce(
                conn, _notify.REVOCATION, max(r.sequence for r in written.values())
            )
        return tuple(written.values())
