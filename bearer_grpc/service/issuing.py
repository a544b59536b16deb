"""Issuing access tokens (and refresh tokens) for the three grants.

The rules of :meth:`TokenAuthority.issue <bearer_grpc.service.authority.TokenAuthority.issue>`:
a grant is checked against the store (one answer, :class:`InvalidGrant`, for every
credential that is not accepted), the requested scopes and audience are narrowed to what
the account may have, the token is signed with the active key, and the password and
refresh grants add a refresh token that rotates on every use (a reused one revokes its
family).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

from bearer_grpc.core.clock import Clock
from bearer_grpc.core.errors import InvalidGrant, InvalidRequest
from bearer_grpc.core.scopes import grant_audience, grant_scopes
from bearer_grpc.core.secrets import (
    MAX_SECRET_LENGTH,
    SecretHasher,
    new_id,
    new_secret,
    refresh_token_hash,
    verify_password,
)
from bearer_grpc.core.tokens import IssuedToken, issue_access_token
from bearer_grpc.service.grants import (
    ClientCredentialsGrant,
    Grant,
    Issued,
    PasswordGrant,
    RefreshGrant,
)
from bearer_grpc.service.keyring import KeyRing
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import AccountKind, RefreshToken, RotationStatus, Store

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
        on_family_revoked: Called after a reused refresh token revoked its family, so
            the new revocations are read at once.
    """

    def __init__(
        self,
        store: Store,
        keys: KeyRing,
        settings: ServiceSettings,
        *,
        clock: Clock,
        hasher: Callable[[], SecretHasher],
        on_family_revoked: Callable[[], None],
    ) -> None:
        self.store = store
        self.keys = keys
        self.settings = settings
        self._clock = clock
        self._hasher = hasher
        self._on_family_revoked = on_family_revoked

    def _now(self) -> int:
        return math.floor(self._clock())

    def issue(self, grant: Grant, scopes: tuple[str, ...], audience: str) -> Issued:
        """Exchange a checked grant for an access token (see the module docstring).

        Args:
            grant: What the caller presents.
            scopes: Requested scopes, already well formed (empty: all allowed).
            audience: Requested audience, already well formed (empty: the default).

        Raises:
            InvalidRequest: A field is empty or oversized.
            InvalidGrant: Credentials or refresh token not accepted.
            Forbidden: A requested scope or audience is not allowed.
            StoreUnavailable: The store cannot answer; nothing was written.
        """
        if isinstance(grant, ClientCredentialsGrant):
            return self._client_credentials(grant, scopes, audience)
        if isinstance(grant, PasswordGrant):
            return self._password(grant, scopes, audience)
        return self._refresh(grant, scopes, audience)

    def _client_credentials(
        self, grant: ClientCredentialsGrant, scopes: tuple[str, ...], audience: str
    ) -> Issued:
        require(grant.client_id, "client_id", MAX_ID_LENGTH)
        require(grant.client_secret, "client_secret", MAX_SECRET_LENGTH)
        client = self.store.get_account(grant.client_id, AccountKind.CLIENT)
        stored = client.credential_hash if client is not None else None
        if not self._hasher().verify(grant.client_secret, stored) or client is None:
            raise InvalidGrant()
        granted = grant_scopes(scopes, client.scopes)
        aud = grant_audience(audience, client.audiences)
        access = self._sign(client.name, aud, granted, client_id=client.name)
        return Issued(access=access, scopes=granted, lifetime=self.settings.access_ttl)

    def _password(self, grant: PasswordGrant, scopes: tuple[str, ...], audience: str) -> Issued:
        require(grant.username, "username", MAX_ID_LENGTH)
        require(grant.password, "password", MAX_SECRET_LENGTH)
        user = self.store.get_account(grant.username, AccountKind.USER)
        stored = user.credential_hash if user is not None else None
        if not verify_password(grant.password, stored) or user is None:
            raise InvalidGrant()
        granted = grant_scopes(scopes, user.scopes)
        aud = grant_audience(audience, user.audiences)
        client_id = self.settings.password_client_id
        access = self._sign(user.name, aud, granted, client_id=client_id)
        refresh_value, refresh = self._refresh_record(
            family_id=new_id(),
            subject=user.name,
            client_id=client_id,
            scopes=granted,  # a refresh never widens the original grant (RFC 6749 §6)
            audience=aud,
            access=access,
        )
        self.store.add_refresh_token(refresh)
        return self._with_refresh(access, granted, refresh_value)

    def _refresh(self, grant: RefreshGrant, scopes: tuple[str, ...], audience: str) -> Issued:
        value = grant.refresh_token
        require(value, "refresh_token", MAX_SECRET_LENGTH)
        token_hash = refresh_token_hash(value)
        current = self.store.get_refresh_token(token_hash)
        if current is None:
            raise InvalidGrant()
        user = self.store.get_account(current.subject, AccountKind.USER)
        if user is None or current.audience not in user.audiences:
            raise InvalidGrant()
        allowed = [s for s in current.scopes if s in user.scopes]
        granted = grant_scopes(scopes, allowed)
        aud = grant_audience(audience, (current.audience,))
        access = self._sign(current.subject, aud, granted, client_id=current.client_id)
        refresh_value, successor = self._refresh_record(
            family_id=current.family_id,
            subject=current.subject,
            client_id=current.client_id,
            scopes=current.scopes,
            audience=current.audience,
            access=access,
        )
        rotation = self.store.rotate_refresh_token(token_hash, successor, self._now())
        if rotation.status is RotationStatus.REUSED:
            log.warning("refresh token reuse: family revoked", extra={"subject": current.subject})
            self._on_family_revoked()
        if rotation.status is not RotationStatus.ROTATED:
            raise InvalidGrant()
        return self._with_refresh(access, granted, refresh_value)

    def _sign(
        self, subject: str, audience: str, scopes: Sequence[str], *, client_id: str
    ) -> IssuedToken:
        now = self._now()
        return issue_access_token(
            self.keys.signing_key(now),
            issuer=self.settings.issuer,
            subject=subject,
            audience=audience,
            scopes=scopes,
            client_id=client_id,
            lifetime=self.settings.access_ttl,
            now=now,
        )

    def _refresh_record(
        self,
        *,
        family_id: str,
        subject: str,
        client_id: str,
        scopes: tuple[str, ...],
        audience: str,
        access: IssuedToken,
    ) -> tuple[str, RefreshToken]:
        value = new_secret()
        now = self._now()
        record = RefreshToken(
            token_hash=refresh_token_hash(value),
            family_id=family_id,
            subject=subject,
            client_id=client_id,
            scopes=scopes,
            audience=audience,
            issued_at=now,
            expires_at=now + self.settings.refresh_ttl,
            access_jti=access.token_id,
            access_expires_at=access.expires_at,
        )
        return value, record

    def _with_refresh(self, access: IssuedToken, scopes: tuple[str, ...], refresh: str) -> Issued:
        return Issued(
            access=access,
            scopes=scopes,
            lifetime=self.settings.access_ttl,
            refresh_token=refresh,
            refresh_lifetime=self.settings.refresh_ttl,
        )


def require(value: str, name: str, max_length: int) -> None:
    """Refuse an empty or oversized request field.

    Raises:
        InvalidRequest: Naming the field, never repeating its value.
    """
    if not value:
        raise InvalidRequest(f"{name} is required")
    if len(value) > max_length:
        raise InvalidRequest(f"{name} is too long")
