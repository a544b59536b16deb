"""The Store in SQL, through SQLAlchemy Core: the queries and transactions.

Every database runs the same statements. What differs between them (the engine, how
transactions begin and announce their changes, the named locks, insert-or-ignore, what a
driver error means) is asked of the store's dialect (``_dialect``; one module per
database). Driver errors become the store's exceptions in ``_translate``.

Where rows alone cannot protect an invariant, a method takes one of the dialect's named
locks, held until the transaction ends (an advisory lock on PostgreSQL, which runs READ
COMMITTED; nothing on SQLite, whose write transactions exclude each other already):

- ``("subject", name)``: taken shared by everything that issues for a subject, and
  exclusively by removing its account or revoking it, so that each grant is ordered
  entirely before or after (``_families`` has the argument).
- ``("revocations",)``: taken before a revocation row draws its sequence number and held
  until commit, so sequence order is commit order and a watcher that resumes after
  sequence N can never miss a row that commits late.
- ``("keys",)``: held by :meth:`SqlStore.add_key_if` while it reads the keys and adds one,
  so one rotator at a time decides from the current set (two replicas cannot both stage
  a scheduled rotation).

- ``("throttle", key)``: held while a throttle row is read and changed.

Lock order is always subject, then rows, then revocations, so they cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace

from sqlalchemy import ColumnElement, delete, insert, literal, select

from bearer_grpc.store import _audit, _families, _migrations, _notify, _rows
from bearer_grpc.store._dialect import Dialect
from bearer_grpc.store._errors import AlreadyExists
from bearer_grpc.store._interface import TestableStore
from bearer_grpc.store._notify import ChangeListener
from bearer_grpc.store._records import (
    AuditEvent,
    RefreshToken,
    Revocation,
    Rotation,
    RotationStatus,
    Throttle,
)
from bearer_grpc.store._schema import (
    audit_events,
    refresh_families,
    refresh_tokens,
    revocations,
    settings,
    throttles,
)
from bearer_grpc.store._sql_accounts import AccountMethods
from bearer_grpc.store._sql_keys import KeyMethods


class SqlStore(AccountMethods, KeyMethods, TestableStore):
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

    def get_setting(self, name: str) -> str | None:
        """The stored value of a setting (None: not set); a read, never a write."""
        with self._read() as conn:
            value: str | None = conn.execute(
                select(settings.c.value).where(settings.c.name == name)
            ).scalar_one_or_none()
        return value

    def replace_setting(self, name: str, value: str) -> None:
        """Store ``value`` as the setting ``name``, replacing any value.

        Announced as a change, so that the servers sharing the store read it at once.
        """
        with self._write() as conn:
            conn.execute(delete(settings).where(settings.c.name == name))
            conn.execute(insert(settings).values(name=name, value=value))
            self._dialect.announce(conn, _notify.SETTING, 0)

    # -- refresh tokens ------------------------------------------------------------------

    def start_family(self, first: RefreshToken) -> bool:
        """Insert the first token of a new refresh family, for the account ``first.account_id``.

        The family starts at ``first.started_at``.

        Only if that account still has that id and ``started_at`` is after its name's
        not-before, decided under the subject's lock (nothing is written otherwise).

        Raises:
            AlreadyExists: The family or the token hash exists.
        """
        with self._write("refresh token already exists") as conn:
            return _families.start(conn, self._dialect, first)

    def add_refresh_token(self, token: RefreshToken) -> None:
        """Insert a family and its first token as given, without checking the account.

        For tests: the service starts families with :meth:`start_family`.

        Raises:
            AlreadyExists: The family or the token hash exists.
        """
        with self._write("refresh token already exists") as conn:
            _families.insert_family(conn, token)

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        """The refresh token with this hash (with its family's account and start), or None."""
        with self._read() as conn:
            return _rows.find_refresh_token(conn, token_hash)

    def rotate_refresh_token(
        self,
        token_hash: str,
        successor: RefreshToken | None,
        now: int,
        *,
        reuse_audit: AuditEvent | None = None,
    ) -> Rotation:
        """Exchange a refresh token atomically (see :meth:`Store.rotate_refresh_token`).

        The successor is stored as a current token with the family, subject, client,
        scopes and audience of the presented one.

        Raises:
            AlreadyExists: The successor's hash is taken; nothing changed.
        """
        with self._write("refresh token already exists") as conn:
            rotation = _families.rotate(conn, self._dialect, token_hash, successor, now)
            if rotation.status is RotationStatus.REUSED and reuse_audit is not None:
                family = rotation.revocations[0].target if rotation.revocations else ""
                _audit.write(conn, replace(reuse_audit, target=family))
            return rotation

    def revoke_refresh_family(
        self, token_hash: str, now: int, *, audit: AuditEvent | None = None
    ) -> tuple[Revocation, ...] | None:
        """Revoke the family of the token with this hash, as REUSED does.

        Args:
            token_hash: The hash of a refresh token of the family.
            now: The time of revocation.
            audit: The event to write when revocations are written; its ``target`` is
                replaced by the family's id.

        Returns:
            The revocations newly written (none when called again), or None if no refresh
            token has that hash.
        """
        with self._write() as conn:
            written = _families.revoke_by_token(conn, self._dialect, token_hash, now)
            if written and audit is not None:
                _audit.write(conn, replace(audit, target=written[0].target))
            return written

    # -- revocations ---------------------------------------------------------------------

    def revoke(
        self, jti: str, expires_at: int, now: int, *, audit: AuditEvent | None = None
    ) -> Revocation:
        """Record a revocation, and ``audit`` with it.

        Idempotent: an existing one for ``jti`` is returned as is (and nothing is written).
        """
        try:
            with self._write() as conn:
                self._dialect.lock(conn, "revocations")
                existing = _rows.find_revocation(conn, jti)
                if existing is not None:
                    return existing
                revocation = _rows.append_revocation(conn, jti, expires_at, now)
                _audit.write(conn, audit)
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

    def recent_revocations(self, *, before: int = 0, limit: int = 100) -> list[Revocation]:
        """Up to ``limit`` revocations with a sequence below ``before`` (0: any), newest first."""
        query = select(revocations).order_by(revocations.c.sequence.desc()).limit(limit)
        if before > 0:
            query = query.where(revocations.c.sequence < before)
        with self._read() as conn:
            return [_rows.revocation(row) for row in conn.execute(query)]

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

    def prune(self, now: int, *, throttle_horizon: int = 0, audit_horizon: int = 0) -> int:
        """Delete what expired before ``now``, stale throttle rows and old audit events.

        What expired: revocations, refresh tokens (and families left without one). Throttle
        rows last changed before ``throttle_horizon`` that neither block nor trust any more,
        and audit events older than ``audit_horizon`` (0 keeps them all).

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
            orphans = (
                ~select(refresh_tokens.c.token_hash)
                .where(refresh_tokens.c.family_id == refresh_families.c.family_id)
                .exists()
            )
            removed += conn.execute(delete(refresh_families).where(orphans)).rowcount
            removed += conn.execute(
                delete(throttles).where(
                    throttles.c.updated_at < throttle_horizon,
                    throttles.c.blocked_until < now,
                    throttles.c.known_until < now,
                )
            ).rowcount
            if audit_horizon > 0:
                removed += conn.execute(
                    delete(audit_events).where(audit_events.c.at < audit_horizon)
                ).rowcount
        return removed

    # -- audit trail ---------------------------------------------------------------------

    def audit_events(self, *, before: int = 0, limit: int = 100) -> list[AuditEvent]:
        """Up to ``limit`` audit events with a sequence below ``before`` (0: any), newest first."""
        with self._read() as conn:
            return _audit.newest(conn, before, limit)

    # -- throttles -----------------------------------------------------------------------

    def update_throttles(
        self,
        keys: Sequence[str],
        change: Callable[[dict[str, Throttle]], Mapping[str, Throttle]],
    ) -> dict[str, Throttle]:
        """Read the throttle rows of ``keys`` and write what ``change`` returns, atomically.

        ``change`` gets a row for every key (a zero one where none is stored) and returns
        the rows to write; it runs inside the transaction, holding the keys' locks, and
        may raise to write nothing.

        Returns:
            Every key's row as it is afterwards.
        """
        with self._write() as conn:
            for key in sorted(set(keys)):
                self._dialect.lock(conn, "throttle", key)
            stored = conn.execute(select(throttles).where(throttles.c.key.in_(keys))).all()
            current = {key: Throttle(key) for key in keys}
            current.update({row.key: _rows.throttle(row) for row in stored})
            for key, row in change(dict(current)).items():
                values = asdict(replace(row, key=key))
                conn.execute(delete(throttles).where(throttles.c.key == key))
                conn.execute(insert(throttles).values(values))
                current[key] = row
        return current

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
