"""Refresh families and subjects: the compound changes of the grants and of subject revocation.

Each runs inside the caller's write transaction (``SqlStore`` begins it).

The rule they keep: no grant commits for an account that no longer exists, or at or
before its subject's not-before. A subject's lock is taken *shared* by whatever issues for
it (a grant confirming its account, a family starting, a rotation, a family revocation)
and *exclusively* by what revokes it (removing the account, revoking the subject), which
reads its clock only once it holds the lock. So every grant is ordered entirely before or
after a revocation: before, and the revocation's not-before is at or after the grant's
``iat``; after, and the grant finds the account gone or its time too early.

Within a family, its row is locked (``FOR UPDATE``) by a rotation and by a family
revocation, which serializes them: a successor is never inserted into a family a
concurrent revocation has already marked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from bearer_grpc.core.verification import RevocationKind
from bearer_grpc.store import _notify, _rows
from bearer_grpc.store._dialect import Dialect
from bearer_grpc.store._records import (
    Account,
    AccountClaim,
    AccountKind,
    RefreshToken,
    Revocation,
    Rotation,
    RotationStatus,
)
from bearer_grpc.store._schema import accounts, refresh_families, refresh_tokens, revocations


def _latest_not_before(subject: ColumnElement[str]) -> Select[Any]:
    """The latest not-before of the subject revocations of ``subject`` (NULL: none)."""
    return select(func.max(revocations.c.not_before)).where(
        revocations.c.kind == RevocationKind.SUBJECT.value, revocations.c.target == subject
    )


# Statements every token grant runs, built once: building a SQLAlchemy expression costs
# more than running it on SQLite (parameters are bound per call).
_NOT_BEFORE = _latest_not_before(bindparam("subject"))
_ACCOUNT = select(
    accounts, _latest_not_before(accounts.c.name).scalar_subquery().label("subject_not_before")
).where(accounts.c.name == bindparam("name"), accounts.c.kind == bindparam("kind"))
_ACCOUNT_ID = select(accounts.c.id).where(
    accounts.c.name == bindparam("name"), accounts.c.kind == bindparam("kind")
)


def subject_not_before(conn: Connection, subject: str) -> int:
    """Tokens of ``subject`` issued at or before this time are revoked (0: none)."""
    return int(conn.execute(_NOT_BEFORE, {"subject": subject}).scalar() or 0)


def read_account(conn: Connection, name: str, kind: AccountKind) -> Account | None:
    """The account ``name`` of ``kind``, with its name's not-before, in one statement."""
    row = conn.execute(_ACCOUNT, {"name": name, "kind": kind.value}).first()
    return _rows.account(row, row.subject_not_before) if row is not None else None


def account_current(
    conn: Connection, name: str, kind: AccountKind, account_id: str, issued_at: int
) -> bool:
    """Whether the account ``name`` of ``kind`` is current for something issued at ``issued_at``.

    It is when the account still has ``account_id``, and ``issued_at`` comes after its
    subject's not-before.
    """
    current = conn.execute(_ACCOUNT_ID, {"name": name, "kind": kind.value}).scalar()
    return current == account_id and issued_at > subject_not_before(conn, name)


def confirm(
    conn: Connection, dialect: Dialect, claims: Sequence[AccountClaim]
) -> list[Account | None]:
    """Each claim's account as it is now, decided under its name's shared lock.

    See :meth:`SqlStore.confirm_accounts`. Names are locked in sorted order, each once.
    """
    names = sorted({claim.name for claim in claims})
    for name in names:
        dialect.lock(conn, "subject", name, shared=True)
    found: dict[tuple[str, AccountKind], Account | None] = {}
    for claim in claims:
        key = (claim.name, claim.kind)
        if key not in found:
            found[key] = read_account(conn, claim.name, claim.kind)
    answers: list[Account | None] = []
    for claim in claims:
        account = found[(claim.name, claim.kind)]
        current = account is not None and claim.issued_at > account.not_before
        answers.append(account if current else None)
    return answers


def start(conn: Connection, dialect: Dialect, first: RefreshToken) -> bool:
    """Insert a new family and its first token, if its account is current.

    See :meth:`SqlStore.start_family`.
    """
    dialect.lock(conn, "subject", first.subject, shared=True)
    user = AccountKind.USER
    if not account_current(conn, first.subject, user, first.account_id, first.started_at):
        return False
    insert_family(conn, replace(first, used=False, revoked=False))
    return True


def insert_family(conn: Connection, first: RefreshToken) -> None:
    """Insert a family and its first token, as given.

    The family's account, start and ``revoked`` flag come from ``first``.
    """
    conn.execute(
        insert(refresh_families).values(
            family_id=first.family_id,
            account_id=first.account_id,
            subject=first.subject,
            started_at=first.started_at,
            revoked=first.revoked,
        )
    )
    conn.execute(insert(refresh_tokens).values(_rows.refresh_values(first)))


def _lock_family(conn: Connection, dialect: Dialect, token_hash: str) -> RefreshToken | None:
    """The token with this hash, read again once its subject and its family's row are locked.

    The subject's lock is shared. None if there is no such token (or it went meanwhile).
    """
    found = _rows.find_refresh_token(conn, token_hash)
    if found is None:
        return None
    dialect.lock(conn, "subject", found.subject, shared=True)
    family = refresh_families.c.family_id == found.family_id
    # FOR UPDATE: rendered on PostgreSQL; SQLite's write transactions exclude each other.
    conn.execute(select(refresh_families.c.family_id).where(family).with_for_update()).all()
    return _rows.find_refresh_token(conn, token_hash)


def rotate(
    conn: Connection,
    dialect: Dialect,
    token_hash: str,
    successor: RefreshToken | None,
    now: int,
) -> Rotation:
    """Exchange a refresh token (see :meth:`Store.rotate_refresh_token`)."""
    previous = _lock_family(conn, dialect, token_hash)
    if previous is None:
        return Rotation(RotationStatus.INVALID, None)
    if previous.revoked:
        return Rotation(RotationStatus.INVALID, previous)
    if previous.used:
        written = revoke_family(conn, dialect, previous.family_id, now)
        return Rotation(RotationStatus.REUSED, previous, written)
    current = account_current(
        conn, previous.subject, AccountKind.USER, previous.account_id, previous.started_at
    )
    if successor is None or previous.expires_at <= now or not current:
        return Rotation(RotationStatus.INVALID, previous)
    conn.execute(
        update(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash).values(used=True)
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


def revoke_by_token(
    conn: Connection, dialect: Dialect, token_hash: str, now: int
) -> tuple[Revocation, ...] | None:
    """Revoke the family of the token with this hash.

    See :meth:`Store.revoke_refresh_family`.
    """
    found = _lock_family(conn, dialect, token_hash)
    if found is None:
        return None
    if found.revoked:
        return ()
    return revoke_family(conn, dialect, found.family_id, now)


def revoke_family(
    conn: Connection, dialect: Dialect, family_id: str, now: int
) -> tuple[Revocation, ...]:
    """Mark a family revoked and write its one revocation.

    Every access token naming the family (``sid``) is refused until the last one expires.

    Access tokens issued before they named their family (rows with an ``access_jti``)
    are revoked one by one as well. The caller holds the family's row lock.
    """
    family = refresh_tokens.c.family_id == family_id
    conn.execute(
        update(refresh_families)
        .where(refresh_families.c.family_id == family_id)
        .values(revoked=True)
    )
    last_expiry = conn.execute(select(func.max(refresh_tokens.c.access_expires_at)).where(family))
    legacy = conn.execute(
        select(refresh_tokens.c.access_jti, refresh_tokens.c.access_expires_at)
        .where(family, refresh_tokens.c.access_jti != "")
        .order_by(refresh_tokens.c.issued_at)
    ).all()
    expires_at = int(last_expiry.scalar() or now)
    dialect.lock(conn, "revocations")
    written = [
        _rows.append_revocation(
            conn, "", expires_at, now, kind=RevocationKind.FAMILY, target=family_id
        )
    ]
    for jti, access_expires_at in legacy:
        if _rows.find_revocation(conn, jti) is None:
            written.append(_rows.append_revocation(conn, jti, access_expires_at, now))
    dialect.announce(conn, _notify.REVOCATION, written[-1].sequence)
    return tuple(written)


def revoke_subject(
    conn: Connection,
    dialect: Dialect,
    name: str,
    *,
    clock: Callable[[], int],
    retention: int,
    remove: AccountKind | None,
) -> Revocation | None:
    """Revoke every token of ``name`` issued until now, and its refresh families.

    With ``remove``, delete the account of that kind first (None if there is none).

    The subject's lock is held exclusively before ``clock()`` is read (see the module
    docstring).
    """
    dialect.lock(conn, "subject", name)
    if remove is not None:
        removed = conn.execute(
            delete(accounts).where(accounts.c.name == name, accounts.c.kind == remove.value)
        ).rowcount
        if not removed:
            return None
        conn.execute(delete(refresh_tokens).where(refresh_tokens.c.subject == name))
        conn.execute(delete(refresh_families).where(refresh_families.c.subject == name))
    else:
        conn.execute(
            update(refresh_families).where(refresh_families.c.subject == name).values(revoked=True)
        )
    now = clock()
    dialect.lock(conn, "revocations")
    revocation = _rows.append_revocation(
        conn,
        "",
        now + retention,
        now,
        kind=RevocationKind.SUBJECT,
        target=name,
        not_before=now,
    )
    dialect.announce(conn, _notify.REVOCATION, revocation.sequence)
    return revocation
