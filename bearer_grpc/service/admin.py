"""Operator actions on a deployment's store: clients, users, keys and revocations.

The CLI's ``clients``, ``users`` and ``keys`` commands call these directly on the store
(``--data-dir`` or ``--store``), and the AdminService calls them for remote callers; a
running server picks the changes up on its next sync. Every change writes an audit event
naming its actor in the same transaction, and logs it once committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bearer_grpc.core.errors import Conflict, InvalidRequest, NotFound
from bearer_grpc.core.scopes import MAX_AUDIENCES, check_audience, check_name, check_scopes
from bearer_grpc.core.secrets import hash_password, new_secret
from bearer_grpc.service import audit
from bearer_grpc.service.admin_keys import WITHDRAW_MARGIN, KeyAdmin, KeyState
from bearer_grpc.service.hasher import load_secret_hasher
from bearer_grpc.service.issuing import MAX_ID_LENGTH, require
from bearer_grpc.service.passwords import check_new_password
from bearer_grpc.service.settings import (
    MAX_ACCESS_TTL,
    MAX_LEEWAY,
    MAX_SECRET_OVERLAP,
)
from bearer_grpc.store import (
    Account,
    AccountKind,
    AlreadyExists,
    AuditEvent,
    Revocation,
)

__all__ = ["WITHDRAW_MARGIN", "Admin", "KeyState", "NewClient"]

RESERVED_NAME = "bearer-grpc"
"""The ``client_id`` of password-grant tokens and the TokenService's own audience."""


@dataclass(frozen=True)
class NewClient:
    """A client just created; the secret is shown once and never stored in clear."""

    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"NewClient(client_id={self.client_id!r}, client_secret=<hidden>)"


_ACTIONS = {
    AccountKind.CLIENT: (audit.CLIENT_CREATE, audit.CLIENT_DELETE),
    AccountKind.USER: (audit.USER_CREATE, audit.USER_DELETE),
}


class Admin(KeyAdmin):
    """Operator actions on one store: clients, users, revocations and keys.

    Clients, users and revocations are here, keys in
    :class:`~bearer_grpc.service.admin_keys.KeyAdmin`.

    Args:
        store: The deployment's store.
        clock: Wall-clock time source.
        actor: Who acts, as the audit trail names them: the admin caller's subject, or
            :data:`~bearer_grpc.service.audit.LOCAL_CLI` (the default) for a command run
            on the store itself.
        keys: The key ring new keys are staged on (a running server's, holding its
            key-encryption key), or None for one built per rotation.
    """

    def _account_detail(self, account: Account) -> dict[str, object]:
        detail: dict[str, object] = {
            "scopes": list(account.scopes),
            "audiences": list(account.audiences),
        }
        if account.certificate_bound:
            detail["certificate_bound"] = True
        return detail

    def add_client(
        self,
        name: str,
        *,
        scopes: Sequence[str],
        audiences: Sequence[str],
        certificate_bound: bool = False,
    ) -> NewClient:
        """Create a client with a fresh 256-bit secret.

        Args:
            name: The client id.
            scopes: Scopes it may request.
            audiences: Audiences it may address, the default first.
            certificate_bound: Its tokens are bound to its mTLS client certificate
                (RFC 8705): it gets tokens only over mTLS, each carrying the certificate's
                thumbprint in ``cnf``.

        Raises:
            InvalidRequest: Bad name, scope or audience, or no audience.
            Conflict: The name is taken by a client or a user.
        """
        secret = new_secret()
        hashed = load_secret_hasher(self._store).hash(secret)
        self._add(name, AccountKind.CLIENT, hashed, scopes, audiences, certificate_bound)
        return NewClient(client_id=name, client_secret=secret)

    def add_user(
        self, name: str, password: str, *, scopes: Sequence[str], audiences: Sequence[str]
    ) -> None:
        """Create a user with a password (stored with scrypt).

        Raises:
            InvalidRequest: Bad name, scope or audience, no audience, or a password the
                policy refuses (shorter than 15 characters, common, repetitive, or holding
                the user's name: see ``service.passwords``).
            Conflict: The name is taken by a client or a user.
        """
        self._check(name, scopes, audiences)
        check_new_password(password, username=name)
        self._add(name, AccountKind.USER, hash_password(password), scopes, audiences)

    def _check(self, name: str, scopes: Sequence[str], audiences: Sequence[str]) -> None:
        check_name(name, what="name")
        if name == RESERVED_NAME:
            raise InvalidRequest(f"the name {name!r} is reserved")
        check_scopes(scopes)
        if not audiences:
            raise InvalidRequest("at least one audience is required")
        if len(audiences) > MAX_AUDIENCES:
            raise InvalidRequest(f"at most {MAX_AUDIENCES} audiences")
        for audience in audiences:
            check_audience(audience)

    def _add(
        self,
        name: str,
        kind: AccountKind,
        credential_hash: str,
        scopes: Sequence[str],
        audiences: Sequence[str],
        certificate_bound: bool = False,
    ) -> None:
        self._check(name, scopes, audiences)
        principal = Account(
            name=name,
            kind=kind,
            credential_hash=credential_hash,
            scopes=check_scopes(scopes),
            audiences=tuple(dict.fromkeys(audiences)),
            created_at=self._now(),
            certificate_bound=certificate_bound,
        )
        event = self._event(_ACTIONS[kind][0], name, self._account_detail(principal))
        try:
            self._store.add_account(principal, audit=event)
        except AlreadyExists as err:
            raise Conflict(f"the name {name!r} is taken") from err
        audit.logged(event)

    def accounts(self, kind: AccountKind) -> list[Account]:
        """Clients or users, by name."""
        return self._store.list_accounts(kind)

    def audit_events(self, limit: int) -> list[AuditEvent]:
        """The newest ``limit`` audit events, newest first."""
        return self._store.audit_events(limit=limit)

    def account(self, name: str, kind: AccountKind) -> Account:
        """One client or user.

        Raises:
            NotFound: No such client or user.
        """
        found = self._store.get_account(name, kind) if name else None
        if found is None:
            raise NotFound(f"no {kind.value} named {name!r}")
        return found

    def update_client(
        self, name: str, *, scopes: Sequence[str], audiences: Sequence[str]
    ) -> Account:
        """Replace a client's scopes and audiences (tokens issued before keep theirs).

        Raises:
            InvalidRequest: Bad scope or audience, or no audience.
            NotFound: No such client.
        """
        self._check(name, scopes, audiences)
        scopes, audiences = check_scopes(scopes), tuple(dict.fromkeys(audiences))
        detail: dict[str, object] = {"scopes": list(scopes), "audiences": list(audiences)}
        event = self._event(audit.CLIENT_UPDATE, name, detail)
        changed = self._store.update_account(
            name, AccountKind.CLIENT, scopes=scopes, audiences=audiences, audit=event
        )
        if changed is None:
            raise NotFound(f"no client named {name!r}")
        audit.logged(event)
        return changed

    def rotate_secret(self, name: str, *, old_secret_valid: int = 0) -> tuple[NewClient, Account]:
        """Give a client a new secret, which works at once.

        The old one keeps working for ``old_secret_valid`` seconds (0: it stops at once); a
        secret rotated before it stops then too. Both are stored as keyed hashes only.

        Returns:
            The new secret (shown once) and the client as it is now.

        Raises:
            InvalidRequest: ``old_secret_valid`` negative or over 30 days.
            NotFound: No such client.
        """
        if not 0 <= old_secret_valid <= MAX_SECRET_OVERLAP:
            raise InvalidRequest(f"the old secret may stay valid 0..{MAX_SECRET_OVERLAP} seconds")
        secret = new_secret()
        hashed = load_secret_hasher(self._store).hash(secret)
        until = self._now() + old_secret_valid if old_secret_valid else 0
        event = self._event(audit.CLIENT_ROTATE_SECRET, name, {"old_secret_valid_until": until})
        changed = self._store.set_credential(
            name, AccountKind.CLIENT, hashed, previous_valid_until=until, audit=event
        )
        if changed is None:
            raise NotFound(f"no client named {name!r}")
        audit.logged(event)
        return NewClient(client_id=name, client_secret=secret), changed

    def set_password(self, name: str, password: str) -> None:
        """Replace a user's password (stored with scrypt).

        Its refresh sessions stay: revoke the subject as well to end them.

        Raises:
            InvalidRequest: A password the policy refuses.
            NotFound: No such user.
        """
        check_new_password(password, username=name)
        event = self._event(audit.USER_SET_PASSWORD, name)
        changed = self._store.set_credential(
            name, AccountKind.USER, hash_password(password), audit=event
        )
        if changed is None:
            raise NotFound(f"no user named {name!r}")
        audit.logged(event)

    def remove(self, name: str, kind: AccountKind) -> Revocation:
        """Delete a client or user, its refresh families, and revoke its tokens.

        Every token issued to the name until now is refused everywhere within a second
        (the subject's "not before", pushed to every verifier), also while ``serve``
        runs elsewhere; a grant in progress either sees the account gone or issues a
        token that is revoked. A name created again later is a new account.

        Returns:
            The subject's revocation.

        Raises:
            NotFound: No such client or user.
        """
        event = self._event(_ACTIONS[kind][1], name)
        revocation = self._store.remove_account(
            name, kind, clock=self._now, retention=MAX_ACCESS_TTL, audit=event
        )
        if revocation is None:
            raise NotFound(f"no {kind.value} named {name!r}")
        audit.logged(event)
        return revocation

    def revoke_subject(self, name: str) -> Revocation:
        """Revoke every token of ``name`` issued until now, and its refresh families.

        The account stays (its next sign-in gets new tokens).

        Raises:
            InvalidRequest: Not a valid name.
        """
        check_name(name, what="name")
        event = self._event(audit.SUBJECT_REVOKE, name)
        revoked = self._store.revoke_subject(
            name, clock=self._now, retention=MAX_ACCESS_TTL, audit=event
        )
        audit.logged(event)
        return revoked

    def revoke_token_id(self, token_id: str) -> Revocation:
        """Revoke one access token by its ``jti``.

        Idempotent: a token revoked already keeps its revocation, and no second event is
        written.

        Raises:
            InvalidRequest: ``token_id`` empty, oversized or malformed.
        """
        require(token_id, "token_id", MAX_ID_LENGTH)
        now = self._now()
        event = self._event(audit.TOKEN_REVOKE, token_id)
        expires_at = now + MAX_ACCESS_TTL + MAX_LEEWAY  # the longest any token can live
        revocation = self._store.revoke(token_id, expires_at, now, audit=event)
        if revocation.revoked_at == now:
            audit.logged(event)
        return revocation
