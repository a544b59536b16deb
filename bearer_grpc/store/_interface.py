"""The one interface the token service depends on, :class:`Store`, and its test extras.

The store knows nothing about tokens, keys or hashing: it keeps rows and makes the
few compound changes atomic (a grant's last check, refresh-token rotation, family and
subject revocation, throttle counters). Times are integer seconds since the Unix epoch,
passed in by the caller (the store never reads a clock; where the moment matters, the
caller passes one to be read under a lock), so behaviour is the same under a frozen test
clock.

The audit trail: every method that changes an account, a key or the revocation log takes
an optional ``audit`` event and writes it in the same transaction as the change, and only
when the change is written (a failed or idempotent call writes none). The store adds no
events of its own and never reads their contents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

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
    Throttle,
)


class Store(Protocol):
    """The persistence port of the token service. Every method is one transaction."""

    # -- accounts --------------------------------------------------------------
    def add_account(self, account: Account, *, audit: AuditEvent | None = None) -> None:
        """Insert an account. Raises AlreadyExists if the name is taken (by either kind)."""
        ...

    def get_account(self, name: str, kind: AccountKind) -> Account | None:
        """The account of that name and kind (``not_before`` set from its name), or None."""
        ...

    def list_accounts(self, kind: AccountKind) -> list[Account]:
        """All accounts of a kind, ordered by name."""
        ...

    def update_account(
        self,
        name: str,
        kind: AccountKind,
        *,
        scopes: Sequence[str],
        audiences: Sequence[str],
        audit: AuditEvent | None = None,
    ) -> Account | None:
        """Replace an account's scopes and audiences; the account afterwards, or None."""
        ...

    def set_credential(
        self,
        name: str,
        kind: AccountKind,
        credential_hash: str,
        *,
        previous_valid_until: int = 0,
        audit: AuditEvent | None = None,
    ) -> Account | None:
        """Replace an account's credential hash; the account afterwards, or None.

        With ``previous_valid_until`` above 0 the current one stays accepted until then,
        else any previous one is dropped.
        """
        ...

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

        The tokens are revoked as :meth:`revoke_subject` does, in the same transaction.
        None if the account did not exist.
        """
        ...

    def revoke_subject(
        self,
        name: str,
        *,
        clock: Callable[[], int],
        retention: int,
        audit: AuditEvent | None = None,
    ) -> Revocation:
        """Revoke every token of ``name`` issued at or before ``clock()``, and its refresh families.

        ``clock()`` is read once no grant for it can be in progress. The revocation is kept
        ``retention`` seconds. A new revocation every time.
        """
        ...

    def confirm_accounts(self, claims: Sequence[AccountClaim]) -> list[Account | None]:
        """The account each grant was signed for, as it is now; one transaction for them all.

        For each ``(name, kind, issued_at)``: the account of that name and kind, with its
        name's not-before, or None when there is none or ``issued_at`` is at or before that
        not-before. Ordered against removals and subject revocations (each name's lock is
        held shared): a token signed before an answer equal to the account it was signed
        for is revoked by any later removal or revocation.
        """
        ...

    # -- keys --------------------------------------------------------------------
    def add_key_if(
        self,
        decide: Callable[[list[KeyRecord]], KeyRecord | None],
        *,
        audit: AuditEvent | None = None,
    ) -> KeyRecord | None:
        """Insert the key ``decide(every stored key)`` returns, if any, one caller at a time.

        The decision and the insert are one transaction under the store's keys lock.
        Returns the inserted record or None. Raises AlreadyExists for a duplicate kid.
        """
        ...

    def list_keys(self) -> list[KeyRecord]:
        """All keys, oldest ``not_before`` first (ties by kid)."""
        ...

    def remove_key_if(
        self,
        kid: str,
        decide: Callable[[KeyRecord], bool],
        *,
        audit: AuditEvent | None = None,
    ) -> KeyRecord | None:
        """Delete key ``kid`` if ``decide(record)`` says so (under the keys lock).

        Returns the deleted record, or None.
        """
        ...

    def update_keys(
        self,
        change: Callable[[list[KeyRecord]], list[KeyRecord]],
        *,
        audit: Callable[[KeyRecord], AuditEvent] | None = None,
    ) -> list[KeyRecord]:
        """Write the private keys of the records ``change(every stored key)`` returns.

        Under the keys lock, with ``audit(record)`` written for each; returns the records
        written.
        """
        ...

    # -- settings ------------------------------------------------------------------
    def get_or_create_setting(self, name: str, value: str) -> str:
        """Return the stored value of a setting, storing ``value`` first if absent (atomic)."""
        ...

    def get_setting(self, name: str) -> str | None:
        """The stored value of a setting (None: not set); a read, never a write."""
        ...

    def replace_setting(self, name: str, value: str) -> None:
        """Store ``value`` as the setting ``name``, replacing any value.

        Announced as a change (running servers read it at once).
        """
        ...

    # -- refresh tokens ------------------------------------------------------------
    def start_family(self, first: RefreshToken) -> bool:
        """Insert a new refresh family and its first token, for ``first.account_id``.

        The family starts at ``first.started_at``. Only if the account is still the one of
        that id and the start is after its name's not-before (decided as
        :meth:`confirm_accounts` does). False: nothing was written.
        """
        ...

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        """The refresh token with this hash (with its family's account and start), or None."""
        ...

    def rotate_refresh_token(
        self,
        token_hash: str,
        successor: RefreshToken | None,
        now: int,
        *,
        reuse_audit: AuditEvent | None = None,
    ) -> Rotation:
        """Exchange a refresh token atomically; reuse is detected first.

        ``reuse_audit`` is written when reuse revokes the family (its target becomes
        the family's id); nothing else is audited here.

        If ``token_hash`` names a used token of a family not yet revoked, revoke the
        family (one revocation naming it, and one per access token issued before tokens
        named their family); status REUSED. Otherwise, if it names a current token (not
        used, of a family not revoked, ``expires_at > now``, whose account still exists
        and was not revoked since the family started) and ``successor`` is given, mark it
        used and insert ``successor`` (whose ``family_id``, ``subject``, ``client_id``,
        ``scopes`` and ``audience`` the store overwrites with the previous token's);
        status ROTATED. Otherwise nothing changes; status INVALID (with ``successor``
        None: only reuse is detected).
        """
        ...

    def revoke_refresh_family(
        self, token_hash: str, now: int, *, audit: AuditEvent | None = None
    ) -> tuple[Revocation, ...] | None:
        """Revoke the family of the token with this hash, as REUSED does.

        ``audit``'s target becomes the family's id.

        Returns the revocations written (none when already revoked), or None if no
        refresh token has that hash.
        """
        ...

    # -- revocations ---------------------------------------------------------------
    def revoke(
        self, jti: str, expires_at: int, now: int, *, audit: AuditEvent | None = None
    ) -> Revocation:
        """Record a revocation; idempotent: an existing one for ``jti`` is returned as is."""
        ...

    def revocations_after(self, sequence: int, limit: int = 1000) -> list[Revocation]:
        """Revocations with a larger sequence, ascending, at most ``limit``."""
        ...

    def recent_revocations(self, *, before: int = 0, limit: int = 100) -> list[Revocation]:
        """Revocations with a smaller sequence than ``before`` (0: any), newest first.

        At most ``limit`` of them.
        """
        ...

    # -- audit trail -------------------------------------------------------------------
    def audit_events(self, *, before: int = 0, limit: int = 100) -> list[AuditEvent]:
        """Audit events with a smaller sequence than ``before`` (0: any), newest first.

        At most ``limit`` of them.
        """
        ...

    # -- throttles -------------------------------------------------------------------
    def update_throttles(
        self,
        keys: Sequence[str],
        change: Callable[[dict[str, Throttle]], Mapping[str, Throttle]],
    ) -> dict[str, Throttle]:
        """Give ``change`` the rows of ``keys`` and write the rows it returns, atomically.

        Zero rows stand in where none is stored; ``change`` may raise to write nothing.
        Returns every key's row afterwards.
        """
        ...

    # -- housekeeping ----------------------------------------------------------------
    def prune(self, now: int, *, throttle_horizon: int = 0, audit_horizon: int = 0) -> int:
        """Delete expired revocations, refresh tokens, throttle rows and audit events.

        Revocations and refresh tokens expired before ``now``, throttle rows unchanged since
        ``throttle_horizon`` that block and trust no more, and audit events from before
        ``audit_horizon`` (0: none). Returns the number of rows removed.
        """
        ...

    def change_listener(self) -> ChangeListener:
        """A listener woken after revocations and new keys are committed.

        Committed by any process where the backend can tell; at least by this one.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class TestableStore(Store, Protocol):
    """A :class:`Store` with the methods tests use to set up and probe a store.

    The service never calls them, so they stay off :class:`Store`, and a store the service
    uses need not offer them. ``SqlStore`` does, so the conformance suite runs on it.
    """

    def add_refresh_token(self, token: RefreshToken) -> None:
        """Insert a family and its first token as given, without checking the account.

        Raises:
            AlreadyExists: The family or the token hash exists.
        """
        ...

    def add_key(self, key: KeyRecord) -> None:
        """Insert a key as it is, without a rotation's decision.

        Raises:
            AlreadyExists: A key with that kid exists.
        """
        ...

    def delete_key(self, kid: str) -> bool:
        """Delete a key as it is, without an audit event. True if it existed."""
        ...

    def active_revocations(self, now: int) -> list[Revocation]:
        """Revocations whose token has not yet expired at ``now``, ascending by sequence."""
        ...

    def ping(self) -> None:
        """Return once the store answers.

        Raises:
            StoreUnavailable: The store cannot be reached.
        """
        ...


# Not a pytest test class, though its name starts with "Test" and test modules import it.
# Set here, not in the body, where it would become a member every store must have.
TestableStore.__test__ = False  # type: ignore[attr-defined]
