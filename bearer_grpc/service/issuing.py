"""Issuing access tokens (and refresh tokens) for the three grants.

The rules of :meth:`TokenAuthority.issue <bearer_grpc.service.authority.TokenAuthority.issue>`:
a grant is checked against the store (one answer, :class:`InvalidGrant`, for every
credential that is not accepted), the requested scopes and audience are narrowed to what
the account may have, the token is signed with the active key, and the password and
refresh grants add a refresh token that rotates on every use (a reused one revokes its
family).

No grant commits for an account that no longer exists. Each grant signs its token, then
confirms in one store transaction, ordered against removals and subject revocations,
that the account it read is still the one of that id: a removal before is seen (the
grant is refused), one after revokes the token (its ``iat`` is at or before the
removal's not-before). A token is always issued after its subject's not-before, so a
name removed and created again within a second does not inherit the revocation. The
client-credentials grant asks more: the account must be unchanged, row for row (its
rule is written once for both drivers in :mod:`.client_credentials`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from bearer_grpc.core.clock import Clock
from bearer_grpc.core.errors import Forbidden, InvalidGrant, InvalidRequest
from bearer_grpc.core.scopes import grant_audience, grant_scopes
from bearer_grpc.core.secrets import (
    MAX_SECRET_LENGTH,
    SecretHasher,
    new_id,
    new_secret,
    refresh_token_hash,
    verify_password,
)
from bearer_grpc.core.tokens import TOKEN_TYPE, IssuedToken
from bearer_grpc.core.verification import SESSION_CLAIM
from bearer_grpc.service import audit
from bearer_grpc.service.binding import confirmation
from bearer_grpc.service.client_credentials import client_credentials, run_on_store
from bearer_grpc.service.grants import (
    ClientCredentialsGrant,
    Grant,
    Issued,
    PasswordGrant,
    RefreshGrant,
)
from bearer_grpc.service.keyring import KeyRing
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.service.throttle import LoginThrottle
from bearer_grpc.store import (
    Account,
    AccountKind,
    AuditEvent,
    RefreshToken,
    Rotation,
    RotationStatus,
    Store,
)

log = logging.getLogger("bearer_grpc.service")

MAX_ID_LENGTH = 128
"""Longest client id, user name or token id accepted."""


class Issuing:
    """Exchanges grants for tokens.

    Args:
        store: Accounts and refresh tokens.
        keys: The signing keys.
        settings: Lifetimes, issuer and the password grant's client id.
        clock: Wall-clock time source.
        hasher: The client-secret hasher (known once the authority has started).
        throttle: Counts failed sign-ins and holds back guessers.
        on_family_revoked: Called after a reused refresh token revoked its family, so
            the new revocation is read at once.
    """

    def __init__(
        self,
        store: Store,
        keys: KeyRing,
        settings: ServiceSettings,
        *,
        clock: Clock,
        hasher: Callable[[], SecretHasher],
        throttle: LoginThrottle,
        on_family_revoked: Callable[[], None],
    ) -> None:
        self.store = store
        self.keys = keys
        self.settings = settings
        self._clock = clock
        self._hasher = hasher
        self._throttle = throttle
        self._on_family_revoked = on_family_revoked

    def _now(self) -> int:
        return math.floor(self._clock())

    def issue(
        self,
        grant: Grant,
        scopes: tuple[str, ...],
        audience: str,
        *,
        peer: str = "",
        certificate: bytes | None = None,
    ) -> Issued:
        """Exchange a checked grant for an access token (see the module docstring).

        Args:
            grant: What the caller presents.
            scopes: Requested scopes, already well formed (empty: all allowed).
            audience: Requested audience, already well formed (empty: the default).
            peer: The caller's network address (what throttling counts by).
            certificate: The PEM client certificate of an mTLS call, or None.

        Raises:
            InvalidRequest: A field is empty, oversized or malformed.
            InvalidGrant: Credentials or refresh token not accepted.
            LoginThrottled: Too many failed sign-ins for the account or from the peer.
            Forbidden: A requested scope or audience is not allowed.
            StoreUnavailable: The store cannot answer; nothing was written.
        """
        if isinstance(grant, ClientCredentialsGrant):
            return self._client_credentials(grant, scopes, audience, peer, certificate)
        if isinstance(grant, PasswordGrant):
            return self._password(grant, scopes, audience, peer)
        return self._refresh(grant, scopes, audience)

    def _client_credentials(
        self,
        grant: ClientCredentialsGrant,
        scopes: tuple[str, ...],
        audience: str,
        peer: str,
        certificate: bytes | None,
    ) -> Issued:
        steps = client_credentials(self, grant, scopes, audience, peer, certificate)
        return run_on_store(steps, self.store, self._throttle)

    def check_client_grant(self, grant: ClientCredentialsGrant, peer: str) -> None:
        """Refuse malformed credentials, and a peer held back for guessing.

        Raises:
            InvalidRequest: The id or secret is empty, oversized or malformed.
            LoginThrottled: The peer failed too often lately.
        """
        require(grant.client_id, "client_id", MAX_ID_LENGTH)
        require(grant.client_secret, "client_secret", MAX_SECRET_LENGTH, secret=True)
        self._throttle.check_secret(peer)

    def client_accepted(
        self, client: Account | None, secret: str, certificate: bytes | None
    ) -> bool:
        """Whether ``secret`` is the client's, and a certificate-bound client sent its certificate.

        The secret is its current one, or its previous one until its deadline. Both hashes
        are compared every time (against a dummy when there is none), so the answer takes
        as long whichever holds.
        """
        hasher = self._hasher()
        current = hasher.verify(secret, client.credential_hash if client else None)
        previous_hash = client.previous_credential_hash if client else ""
        previous = hasher.verify(secret, previous_hash or None)
        if client is None or (client.certificate_bound and certificate is None):
            return False
        return current or (previous and self._now() < client.previous_valid_until)

    def client_token(
        self,
        client: Account,
        scopes: tuple[str, ...],
        audience: str,
        certificate: bytes | None,
    ) -> tuple[Issued, int]:
        """Sign an accepted client's access token: what it returns, and the token's ``iat``.

        Raises:
            Forbidden: A requested scope or audience is not allowed.
        """
        granted = grant_scopes(scopes, client.scopes)
        aud = grant_audience(audience, client.audiences)
        bound = confirmation(certificate) if client.certificate_bound and certificate else {}
        access = self._sign(client, aud, granted, client_id=client.name, extra=bound)
        issued = Issued(access=access.token, scopes=granted, lifetime=self.settings.access_ttl)
        return issued, access.issued_at

    def _password(
        self, grant: PasswordGrant, scopes: tuple[str, ...], audience: str, peer: str
    ) -> Issued:
        require(grant.username, "username", MAX_ID_LENGTH)
        require(grant.password, "password", MAX_SECRET_LENGTH, secret=True)
        self._throttle.begin_password(grant.username, peer)  # before the scrypt work
        user = self.store.get_account(grant.username, AccountKind.USER)
        stored = user.credential_hash if user is not None else None
        if not verify_password(grant.password, stored) or user is None:
            raise InvalidGrant()
        self._throttle.password_succeeded(grant.username, peer)
        granted = grant_scopes(scopes, user.scopes)
        aud = grant_audience(audience, user.audiences)
        client_id = self.settings.password_client_id
        family_id = new_id()
        access = self._sign(
            user, aud, granted, client_id=client_id, extra={SESSION_CLAIM: family_id}
        )
        refresh_value, first = self._refresh_record(
            family_id=family_id,
            subject=user.name,
            client_id=client_id,
            scopes=granted,  # a refresh never widens the original grant (RFC 6749 §6)
            audience=aud,
            access=access,
            account_id=user.id,
            started_at=access.issued_at,
        )
        if not self.store.start_family(first):
            raise InvalidGrant()  # removed (or revoked) while the password was checked
        return self._with_refresh(access.token, granted, refresh_value, first)

    def _refresh(self, grant: RefreshGrant, scopes: tuple[str, ...], audience: str) -> Issued:
        value = grant.refresh_token
        require(value, "refresh_token", MAX_SECRET_LENGTH)
        token_hash = refresh_token_hash(value)
        current = self.store.get_refresh_token(token_hash)
        if current is None:
            raise InvalidGrant()
        user = self.store.get_account(current.subject, AccountKind.USER)
        try:
            if current.used or current.revoked or user is None or not self._in_session(current):
                raise InvalidGrant()
            if user.id != current.account_id or current.audience not in user.audiences:
                raise InvalidGrant()
            allowed = [s for s in current.scopes if s in user.scopes]
            granted = grant_scopes(scopes, allowed)
            aud = grant_audience(audience, (current.audience,))
        except (InvalidGrant, Forbidden) as err:
            # Reuse first, whatever was asked: a rotated token presented again revokes
            # its family. One answer for every refusal: it says nothing of the token.
            now = self._now()
            self._rotated(
                self.store.rotate_refresh_token(
                    token_hash, None, now, reuse_audit=self._reuse_event(now)
                )
            )
            raise InvalidGrant() from err
        assert user is not None  # refused above otherwise
        family = {SESSION_CLAIM: current.family_id}
        access = self._sign(user, aud, granted, client_id=current.client_id, extra=family)
        refresh_value, successor = self._refresh_record(
            family_id=current.family_id,
            subject=current.subject,
            client_id=current.client_id,
            scopes=current.scopes,
            audience=current.audience,
            access=access,
            account_id=current.account_id,
            started_at=current.started_at,
        )
        rotation = self._rotated(
            self.store.rotate_refresh_token(
                token_hash,
                successor,
                access.issued_at,
                reuse_audit=self._reuse_event(access.issued_at),
            )
        )
        if rotation.status is not RotationStatus.ROTATED:
            raise InvalidGrant()
        return self._with_refresh(access.token, granted, refresh_value, successor)

    def _in_session(self, token: RefreshToken) -> bool:
        """Whether the token's session is younger than the absolute session lifetime."""
        return self._now() < token.started_at + self.settings.session_ttl

    @staticmethod
    def _reuse_event(now: int) -> AuditEvent:
        """The event of a family revoked because a rotated refresh token came back."""
        detail = {"reason": "refresh token reuse"}
        return audit.event(audit.TOKEN_SERVICE, audit.FAMILY_REVOKE, "", now, detail)

    def _rotated(self, rotation: Rotation) -> Rotation:
        if rotation.status is RotationStatus.REUSED:
            subject = rotation.previous.subject if rotation.previous else ""
            log.warning("refresh token reuse: family revoked", extra={"subject": subject})
            family = rotation.revocations[0].target if rotation.revocations else ""
            audit.logged(replace(self._reuse_event(self._now()), target=family))
            self._on_family_revoked()
        return rotation

    def _sign(
        self,
        account: Account,
        audience: str,
        scopes: Sequence[str],
        *,
        client_id: str,
        extra: Mapping[str, Any],
    ) -> _Signed:
        """Sign an RFC 9068 access token for ``account``, issued after its not-before."""
        issued_at = max(self._now(), account.not_before + 1)
        lifetime = self.settings.access_ttl
        token_id = new_id()
        claims = {
            "iss": self.settings.issuer,
            "sub": account.name,
            "aud": audience,
            "exp": issued_at + lifetime,
            "iat": issued_at,
            "nbf": issued_at,
            "jti": token_id,
            "client_id": client_id,
            "scope": " ".join(scopes),
            **extra,
        }
        token = self.keys.signing_key(issued_at).sign(claims, typ=TOKEN_TYPE)
        return _Signed(IssuedToken(token, token_id, issued_at + lifetime), issued_at)

    def _refresh_record(
        self,
        *,
        family_id: str,
        subject: str,
        client_id: str,
        scopes: tuple[str, ...],
        audience: str,
        access: _Signed,
        account_id: str,
        started_at: int,
    ) -> tuple[str, RefreshToken]:
        value = new_secret()
        now = access.issued_at
        session_end = started_at + self.settings.session_ttl
        record = RefreshToken(
            token_hash=refresh_token_hash(value),
            family_id=family_id,
            subject=subject,
            client_id=client_id,
            scopes=scopes,
            audience=audience,
            issued_at=now,
            expires_at=min(now + self.settings.refresh_ttl, session_end),
            access_jti="",  # the access token names its family instead
            access_expires_at=access.token.expires_at,
            account_id=account_id,
            started_at=started_at,
        )
        return value, record

    def _with_refresh(
        self, access: IssuedToken, scopes: tuple[str, ...], refresh: str, record: RefreshToken
    ) -> Issued:
        return Issued(
            access=access,
            scopes=scopes,
            lifetime=self.settings.access_ttl,
            refresh_token=refresh,
            refresh_lifetime=record.expires_at - record.issued_at,
        )


class _Signed:
    """A signed access token and its ``iat``."""

    __slots__ = ("issued_at", "token")

    def __init__(self, token: IssuedToken, issued_at: int) -> None:
        self.token = token
        self.issued_at = issued_at


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""C0 and C1 control characters and DEL: never part of a name, an id or a token."""


def require(value: str, name: str, max_length: int, *, secret: bool = False) -> None:
    """Refuse an empty, oversized or malformed request field, the same on every store.

    Every field is checked here, before it reaches the store or a hash: a NUL character
    is refused in every field (PostgreSQL cannot store one), and every control character
    in names, ids and tokens. A ``secret`` (client secret, password) may hold any other
    character.

    Raises:
        InvalidRequest: Naming the field, never repeating its value.
    """
    if not value:
        raise InvalidRequest(f"{name} is required")
    if len(value) > max_length:
        raise InvalidRequest(f"{name} is too long")
    malformed = "\x00" in value if secret else _CONTROL.search(value) is not None
    if malformed:
        raise InvalidRequest(f"{name} holds a control character")
