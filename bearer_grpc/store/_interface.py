"""The one interface the token service depends on, :class:`Store`, and its test extras.

The store knows nothing about tokens, keys or hashing: it keeps rows and makes the
few compound changes atomic (refresh-token rotation, family revocation). Times are
integer seconds since the Unix epoch, passed in by the caller (the store never reads
a clock), so behaviour is the same under a frozen test clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bearer_grpc.store._notify import ChangeListener
from bearer_grpc.store._records import (
    Account,
    AccountKind,
    KeyRecord,
    RefreshToken,
    Revocation,
    Rotation,
)


class Store(Protocol):
    """The persistence port of the token service. Every method is one transaction."""

    # -- accounts --------------------------------------------------------------
    def add_account(self, account: Account) -> None:
        """Insert an account. Raises AlreadyExists if the name is taken (by either kind)."""
        ...

    def get_account(self, name: str, kind: AccountKind) -> Account | None:
        """The account of that name and kind, or None."""
        ...

    def list_accounts(self, kind: AccountKind) -> list[Account]:
        """All accounts of a kind, ordered by name."""
        ...

    def remove_account(self, name: str, kind: AccountKind) -> bool:
        """Delete an account and its refresh tokens. True if it existed."""
        ...

    # -- keys --------------------------------------------------------------------
    def add_key_if(self, decide: Callable[[list[KeyRecord]], KeyRecord | None]) -> KeyRecord | None:
        """Insert the key ``decide(every stored key)`` returns, if any, one caller at a time
        (the decision and the insert are one transaction under the store's keys lock).
        Returns the inserted record or None. Raises AlreadyExists for a duplicate kid."""
        ...

    def list_keys(self) -> list[KeyRecord]:
        """All keys, oldest ``not_before`` first (ties by kid)."""
        ...

    def delete_key(self, kid: str) -> bool:
        """Delete a key (once no token it signed can still be valid). True if it existed."""
        ...

    # -- settings ------------------------------------------------------------------
    def get_or_create_setting(self, name: str, value: str) -> str:
        """Return the stored value of a setting, storing ``value`` first if absent (atomic)."""
        ...

    # -- refresh tokens ------------------------------------------------------------
    def add_refresh_token(self, token: RefreshToken) -> None:
        """Insert the first refresh token of a family."""
        ...

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        """The refresh token with this hash, or None."""
        ...

    def rotate_refresh_token(self, token_hash: str, successor: RefreshToken, now: int) -> Rotation:
        """Exchange a refresh token atomically.

        If ``token_hash`` names a current token (not used, not revoked, ``expires_at > now``),
        mark it used and insert ``successor`` (whose ``family_id``, ``subject``,
        ``client_id``, ``scopes`` and ``audience`` the store overwrites with the previous
        token's); status ROTATED. If it names a used token of a non-revoked family, revoke the
        family (every row ``revoked``, and every access token issued with the family gets a
        revocation, expired or not: verifiers accept tokens a leeway past ``exp``); status
        REUSED. Otherwise INVALID.
        """
        ...

    def revoke_refresh_family(self, token_hash: str, now: int) -> tuple[Revocation, ...] | None:
        """Revoke the family of the token with this hash, as REUSED does.

        Returns the access-token revocations written (possibly none), or None if no refresh
        token has that hash. Idempotent.
        """
        ...

    # -- revocations ---------------------------------------------------------------
    def revoke(self, jti: str, expires_at: int, now: int) -> Revocation:
        """Record a revocation; idempotent: an existing one for ``jti`` is returned as is."""
        ...

    def revocations_after(self, sequence: int, limit: int = 1000) -> list[Revocation]:
        """Revocations with a larger sequence, ascending, at most ``limit``."""
        ...

    # -- housekeeping ----------------------------------------------------------------
    def prune(self, now: int) -> int:
        """Delete revocations and refresh tokens expired before ``now``; return rows removed."""
        ...

    def change_listener(self) -> ChangeListener:
        """A listener woken after revocations and new keys are committed (by any process
        where the backend can tell; at least by this one)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class TestableStore(Store, Protocol):
    """A :class:`Store` with the methods tests use to set up and probe a store.

    The service never calls them, so they stay off :class:`Store`, and a store the service
    uses need not offer them. ``SqlStore`` does, so the conformance suite runs on it.
    """

    def add_key(self, key: KeyRecord) -> None:
        """Insert a key as it is, without a rotation's decision.

        Raises:
            AlreadyExists: A key with that kid exists.
        """
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
