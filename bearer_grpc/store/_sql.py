"""The Store on SQLite or PostgreSQL, through SQLAlchemy Core: the queries and transactions.

Both dialects run the same statements; engines are built by ``_engine`` (:func:`open_store`)
and driver errors mapped by ``_translate``. What differs is kept to four places:

- **Write serialization.** SQLite starts every write transaction with ``BEGIN IMMEDIATE``
  (the pysqlite event-hook recipe in ``_engine``), so writers queue on the database lock
  for up to ``busy_timeout_s`` and then fail as StoreUnavailable. PostgreSQL runs READ
  COMMITTED with transaction-scoped advisory locks where rows alone cannot protect an
  invariant (``_migrations.xact_lock``):

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
- **Announcements** (``_notify``): a committed revocation or new key wakes the other
  replicas through ``pg_notify`` in the same transaction on PostgreSQL, and this
  process's listeners after the commit on SQLite.
- **Upserts** (``INSERT ... ON CONFLICT DO NOTHING``) need the dialect's own ``insert``.
- **Error mapping** (``_translate``): driver errors become StoreUnavailable (cannot connect,
  locked, I/O, deadlock: retry later), AlreadyExists (unique violation) or StoreError.
  Messages are terse and never contain the URL or statement parameters
  (``hide_parameters=True``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    delete,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from bearer_grpc.store import _migrations, _notify, _rows
from bearer_grpc.store._engine import READ_ONLY, listener_connect_kwargs
from bearer_grpc.store._errors import AlreadyExists, StoreError
from bearer_grpc.store._interface import Store
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

_ANNOUNCED = "bearer_grpc_announced"
"""``Connection.info`` flag: the transaction announced a change (SQLite)."""
# Delivered at commit, and only then. The schema tells stores in one database apart.
_NOTIFY = text("SELECT pg_notify(:channel, CAST(:head AS text) || current_schema())")

# -- the store ---------------------------------------------------------------------------------


class SqlStore(Store):
    """The :class:`Store` on SQLite or PostgreSQL.

    Build one with :func:`open_store`, which configures the engine (SQLite pragmas and
    ``BEGIN IMMEDIATE``, PostgreSQL pre-ping). Every method is one transaction, and is safe
    to call from several threads and several processes at once.
    """

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine and bring its database schema up to date.

        Args:
            engine: A SQLite or PostgreSQL engine configured by :func:`open_store`.

        Raises:
            StoreError: The database schema is newer than this release knows.
            StoreUnavailable: The database cannot be reached or stays locked.
        """
        self._engine = engine
        self._reader = engine.execution_options(**{READ_ONLY: True})
        self._backend = "PostgreSQL" if engine.dialect.name == "postgresql" else "SQLite"
        self._local = _notify.LocalChanges()
        with self._write() as conn:
            _migrations.migrate(conn)

    def __repr__(self) -> str:
        url = self._engine.url  # never rendered: its password or query may hold secrets
        host = f", host={url.host!r}" if url.host else ""
        return f"SqlStore(backend={self._engine.dialect.name!r}{host}, database={url.database!r})"

    @contextmanager
    def _write(self, conflict: str = "row already exists") -> Iterator[Connection]:
        with translated_errors(self._backend, conflict):
            with self._engine.begin() as conn:
                conn.info.pop(_ANNOUNCED, None)
                yield conn
                announced = conn.info.pop(_ANNOUNCED, False)
            if announced:  # committed: now wake this process's listeners (SQLite)
                self._local.announce()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with translated_errors(self._backend, "row already exists"), self._reader.begin() as conn:
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
            _migrations.xact_lock(conn, "subject", name)
            removed = conn.execute(
                delete(accounts).where(accounts.c.name == name, accounts.c.kind == kind.value)
            ).rowcount
            if removed:
                conn.execute(delete(refresh_tokens).where(refresh_tokens.c.subject == name))
        return removed > 0

    # -- keys ----------------------------------------------------------------------------

    def add_key(self, key: KeyRecord) -> None:
        """Insert a key.

        Raises:
            AlreadyExists: A key with that kid exists.
        """
        with self._write(f"key {key.kid!r} already exists") as conn:
            conn.execute(insert(signing_keys).values(_rows.key_values(key)))
            _announce(conn, _notify.KEY, 0)

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
            _migrations.xact_lock(conn, "keys")
            chosen = decide(_rows.sorted_keys(conn.execute(select(signing_keys)).all()))
            if chosen is not None:
                conn.execute(insert(signing_keys).values(_rows.key_values(chosen)))
                _announce(conn, _notify.KEY, 0)
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
            _insert_ignore(conn, settings, {"name": name, "value": value}, key="name")
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
            return _find_refresh_token(conn, token_hash)

    def rotate_refresh_token(self, token_hash: str, successor: RefreshToken, now: int) -> Rotation:
        """Exchange a refresh token atomically (see :meth:`Store.rotate_refresh_token`).

        The successor is stored as a current token (``used`` and ``revoked`` false) with
        the family, subject, client, scopes and audience of the presented one.

        Raises:
            AlreadyExists: The successor's hash is taken; nothing changed.
        """
        with self._write("refresh token already exists") as conn:
            found = _find_refresh_token(conn, token_hash)
            if found is None:
                return Rotation(RotationStatus.INVALID, None)
            _migrations.xact_lock(conn, "subject", found.subject)
            previous = _find_refresh_token(conn, token_hash, for_update=True)
            if previous is None:  # deleted meanwhile (account removed, or pruned)
                return Rotation(RotationStatus.INVALID, None)
            if previous.revoked:
                return Rotation(RotationStatus.INVALID, previous)
            if previous.used:
                written = _revoke_family(conn, previous.family_id, now)
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
            found = _find_refresh_token(conn, token_hash)
            if found is None:
                return None
            _migrations.xact_lock(conn, "subject", found.subject)
            return _revoke_family(conn, found.family_id, now)

    # -- revocations ---------------------------------------------------------------------

    def revoke(self, jti: str, expires_at: int, now: int) -> Revocation:
        """Record a revocation; idempotent: an existing one for ``jti`` is returned as is."""
        try:
            with self._write() as conn:
                _migrations.xact_lock(conn, "revocations")
                existing = _find_revocation(conn, jti)
                if existing is not None:
                    return existing
                revocation = _append_revocation(conn, jti, expires_at, now)
                _announce(conn, _notify.REVOCATION, revocation.sequence)
                return revocation
        except AlreadyExists:
            # Lost an insert race to a writer that did not take the lock: use its row.
            with self._read() as conn:
                existing = _find_revocation(conn, jti)
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
        query = (
            select(revocations)
            .where(revocations.c.sequence > sequence)
            .order_by(revocations.c.sequence)
            .limit(limit)
        )
        with self._read() as conn:
            return [_rows.revocation(row) for row in conn.execute(query)]

    def active_revocations(self, now: int) -> list[Revocation]:
        """Revocations whose token has not yet expired at ``now``, ascending by sequence."""
        query = (
            select(revocations)
            .where(revocations.c.expires_at > now)
            .order_by(revocations.c.sequence)
        )
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
        """Raise StoreUnavailable unless the store answers."""
        with self._read() as conn:
            conn.execute(select(literal(1)))

    def change_listener(self) -> ChangeListener:
        """A listener woken by every revocation and new key committed (see ``_notify``).

        On PostgreSQL: by any process, through a ``LISTEN`` connection of its own. On
        SQLite: by this process only (others are seen by polling).
        """
        if self._engine.dialect.name == "postgresql":
            return _notify.PostgresListener(listener_connect_kwargs(self._engine))
        return self._local

    def close(self) -> None:
        """Release connections. The store reconnects if used again."""
        self._engine.dispose()


# -- statements shared by several methods ------------------------------------------------------


def _insert_ignore(conn: Connection, table: Table, values: Mapping[str, Any], *, key: str) -> None:
    """INSERT, or nothing if a row with the same ``key`` exists (or commits meanwhile)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            postgresql.insert(table).values(values).on_conflict_do_nothing(index_elements=[key])
        )
    else:
        conn.execute(
            sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=[key])
        )


def _find_refresh_token(
    conn: Connection, token_hash: str, *, for_update: bool = False
) -> RefreshToken | None:
    query = select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
    if for_update:
        query = query.with_for_update()  # rendered on PostgreSQL, ignored by SQLite
    row = conn.execute(query).first()
    return None if row is None else _rows.refresh_token(row)


def _revoke_family(conn: Connection, family_id: str, now: int) -> tuple[Revocation, ...]:
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
    _migrations.xact_lock(conn, "revocations")
    written: dict[str, Revocation] = {}
    for jti, expires_at in access:
        if jti not in written and _find_revocation(conn, jti) is None:
            written[jti] = _append_revocation(conn, jti, expires_at, now)
    if written:
        _announce(conn, _notify.REVOCATION, max(r.sequence for r in written.values()))
    return tuple(written.values())


def _announce(conn: Connection, kind: str, sequence: int) -> None:
    """Wake every listener once the current transaction commits (see ``_notify``)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY, {"channel": _notify.CHANNEL, "head": _notify.payload(kind, sequence)})
    else:
        conn.info[_ANNOUNCED] = True


def _find_revocation(conn: Connection, jti: str) -> Revocation | None:
    row = conn.execute(select(revocations).where(revocations.c.jti == jti)).first()
    return None if row is None else _rows.revocation(row)


def _append_revocation(conn: Connection, jti: str, expires_at: int, now: int) -> Revocation:
    """Insert a revocation; the caller holds the revocations lock."""
    result = conn.execute(
        insert(revocations).values(jti=jti, expires_at=expires_at, revoked_at=now)
    )
    key = result.inserted_primary_key  # lastrowid on SQLite, RETURNING on PostgreSQL
    if key is None:
        raise StoreError("the database did not report the revocation's sequence")
    return Revocation(sequence=int(key[0]), jti=jti, expires_at=expires_at, revoked_at=now)
