"""The rules of the token service, free of gRPC: issue, verify, revoke, publish keys.

Every method is synchronous and may block on the store or on password hashing; the
gRPC servicer runs them in worker threads. Errors are raised from the one tree in
``bearer_grpc.core.errors`` and mapped to gRPC at the edge.
"""

from __future__ import annotations

import base64
import logging
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from bearer_grpc.core.cache import DEFAULT_CACHE_SIZE, TokenCache
from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.errors import (
    InsufficientScope,
    InvalidGrant,
    InvalidRequest,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenMissing,
    TokenRevoked,
    Unavailable,
)
from bearer_grpc.core.keys import KeyEncryptionKey
from bearer_grpc.core.scopes import check_audience, check_scopes, grant_audience, grant_scopes
from bearer_grpc.core.secrets import (
    MAX_SECRET_LENGTH,
    SecretHasher,
    new_id,
    new_secret,
    refresh_token_hash,
    verify_password,
)
from bearer_grpc.core.tokens import (
    MAX_TOKEN_BYTES,
    IssuedToken,
    Principal,
    TokenVerifier,
    issue_access_token,
)
from bearer_grpc.core.verification import TrustedKeys
from bearer_grpc.service.keyring import KeyRing
from bearer_grpc.service.revocations import RevocationLog
from bearer_grpc.service.settings import (
    ADMIN_AUDIENCE,
    ADMIN_SCOPE,
    MAX_ACCESS_TTL,
    ServiceSettings,
)
from bearer_grpc.store import (
    AccountKind,
    RefreshToken,
    RotationStatus,
    Store,
    StoreUnavailable,
)

log = logging.getLogger("bearer_grpc.service")

_REFRESH_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}", re.ASCII)
_MAX_ID_LENGTH = 128
SECRET_HASH_KEY_SETTING = "secret_hash_key"  # noqa: S105 (a setting name)
EPOCH_SETTING = "revocation_epoch"
"""Setting naming this store's revocation log; a new store has a new one."""


@dataclass(frozen=True)
class ClientCredentialsGrant:
    """A service proving itself with its client id and secret."""

    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class PasswordGrant:
    """A person logging in with username and password."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class RefreshGrant:
    """A refresh token being exchanged (and rotated)."""

    refresh_token: str = field(repr=False)


Grant = ClientCredentialsGrant | PasswordGrant | RefreshGrant


@dataclass(frozen=True)
class Issued:
    """What IssueToken returns.

    Attributes:
        access: The access token.
        scopes: Granted scopes.
        lifetime: Seconds until the access token expires.
        refresh_token: New refresh token ("" for client credentials); hidden from repr.
        refresh_lifetime: Seconds until it expires (0 when none).
    """

    access: IssuedToken
    scopes: tuple[str, ...]
    lifetime: int
    refresh_token: str = field(default="", repr=False)
    refresh_lifetime: int = 0


def load_secret_hasher(store: Store) -> SecretHasher:
    """The deployment's client-secret hasher, creating its key on first use."""
    fresh = base64.b64encode(new_secret().encode()).decode()
    return SecretHasher(
        base64.b64decode(store.get_or_create_setting(SECRET_HASH_KEY_SETTING, fresh))
    )


class TokenAuthority:
    """Issues, verifies and revokes tokens for one deployment.

    Args:
        store: Shared state (accounts, keys, refresh tokens, revocations).
        settings: Issuing and verification settings.
        kek: Key-encryption key for private keys at rest, or None.
        clock: Wall-clock time source.
        cache_size: Verified tokens :meth:`verify` keeps (0 disables the cache).
    """

    def __init__(
        self,
        store: Store,
        settings: ServiceSettings | None = None,
        *,
        kek: KeyEncryptionKey | None = None,
        clock: Clock = system_clock,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.settings = settings or ServiceSettings()
        self.store = store
        self.revocations = RevocationLog()
        self.keys = KeyRing(store, kek=kek, retention=self.settings.key_retention)
        self._clock = clock
        self._sync_lock = threading.Lock()
        self._hasher: SecretHasher | None = None
        self._trusted: TrustedKeys | None = None
        self._cache_size = cache_size
        self.epoch = ""
        """Id of the store's revocation log (sequences restart only with a new one)."""

    def __repr__(self) -> str:
        return f"TokenAuthority(issuer={self.settings.issuer!r})"

    @property
    def clock(self) -> Clock:
        """The wall-clock time source every rule here reads."""
        return self._clock

    def _now(self) -> int:
        return math.floor(self._clock())

    def _horizon(self, now: int) -> int:
        """Revocations of tokens that expired before this are forgotten: a verifier
        accepts a token until ``exp + leeway`` by its own clock, which may lag ours by up
        to a leeway too."""
        return now - 2 * self.settings.leeway

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Load keys (creating the first), the hashing key and the revocation log.

        Raises:
            StoreUnavailable: The store cannot be read.
            KeyMaterialError: A stored private key cannot be loaded.
        """
        self._hasher = load_secret_hasher(self.store)
        self.epoch = self.store.get_or_create_setting(EPOCH_SETTING, new_id())
        self.sync()

    def sync(self) -> int:
        """Pick up keys and revocations other processes wrote; prune what expired.

        Returns:
            How many new revocations were read.
        """
        now = self._now()
        with self._sync_lock:
            self.keys.load(now=now, algorithm=self.settings.key_algorithm)
            verifier = TokenVerifier(
                self.keys.public_key_set(now),
                issuer=self.settings.issuer,
                clock=self._clock,
                leeway=self.settings.leeway,
                is_revoked=self.revocations.is_revoked,
            )
            current = self._trusted
            self._trusted = (
                current.replaced_by(verifier)
                if current is not None
                else TrustedKeys(
                    verifier, TokenCache(self._cache_size, leeway=self.settings.leeway)
                )
            )
            added = self.revocations.catch_up(self.store, horizon=self._horizon(now))
            self.revocations.prune(self._horizon(now))
        return added

    def housekeeping(self) -> int:
        """Delete expired revocations, refresh tokens and retired keys from the store."""
        now = self._now()
        removed = self.store.prune(self._horizon(now))
        for record in self.keys.expired(now):
            removed += int(self.store.delete_key(record.kid))
        return removed

    def _current(self) -> TrustedKeys:
        current = self._trusted
        if current is None:
            raise RuntimeError("TokenAuthority.start() was not called")
        return current

    @property
    def verifier(self) -> TokenVerifier:
        """The verifier over the currently published keys."""
        return self._current().verifier

    @property
    def cache(self) -> TokenCache:
        """The cache of tokens :meth:`verify` accepted (replaced when a key is dropped)."""
        return self._current().cache

    @property
    def hasher(self) -> SecretHasher:
        """The client-secret hasher."""
        if self._hasher is None:
            raise RuntimeError("TokenAuthority.start() was not called")
        return self._hasher

    # -- issuing -----------------------------------------------------------------------
    def issue(self, grant: Grant, *, scopes: Sequence[str] = (), audience: str = "") -> Issued:
        """Exchange a grant for an access token.

        Raises:
            InvalidRequest: A field is empty, oversized or malformed.
            InvalidGrant: Credentials or refresh token not accepted.
            Forbidden: A requested scope or audience is not allowed.
            Unavailable: The store cannot answer; nothing was written.
        """
        requested = check_scopes(scopes)
        if audience:
            check_audience(audience)
        try:
            if isinstance(grant, ClientCredentialsGrant):
                return self._client_credentials(grant, requested, audience)
            if isinstance(grant, PasswordGrant):
                return self._password(grant, requested, audience)
            return self._refresh(grant, requested, audience)
        except StoreUnavailable as err:
            raise Unavailable() from err

    def _client_credentials(
        self, grant: ClientCredentialsGrant, scopes: tuple[str, ...], audience: str
    ) -> Issued:
        _require(grant.client_id, "client_id", _MAX_ID_LENGTH)
        _require(grant.client_secret, "client_secret", MAX_SECRET_LENGTH)
        client = self.store.get_account(grant.client_id, AccountKind.CLIENT)
        stored = client.credential_hash if client is not None else None
        if not self.hasher.verify(grant.client_secret, stored) or client is None:
            raise InvalidGrant()
        granted = grant_scopes(scopes, client.scopes)
        aud = grant_audience(audience, client.audiences)
        access = self._sign(client.name, aud, granted, client_id=client.name)
        return Issued(access=access, scopes=granted, lifetime=self.settings.access_ttl)

    def _password(self, grant: PasswordGrant, scopes: tuple[str, ...], audience: str) -> Issued:
        _require(grant.username, "username", _MAX_ID_LENGTH)
        _require(grant.password, "password", MAX_SECRET_LENGTH)
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
        _require(value, "refresh_token", MAX_SECRET_LENGTH)
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
            self._catch_up()
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

    # -- verifying -----------------------------------------------------------------------
    def verify(
        self, token: str, *, audience: str, required_scopes: Sequence[str] = ()
    ) -> Principal:
        """Verify an access token (see :meth:`TokenVerifier.verify`).

        A token verified before is found in a bounded cache by its exact string; the
        cache holds the verified principal, never a decision, so every hit is checked
        again for expiry (with the leeway, by this authority's clock), audience,
        revocation by ``jti`` and the required scopes, in the order a full verification
        checks them. Entries go when :meth:`sync` stops trusting a key.

        Raises:
            InvalidRequest: ``audience`` or a required scope is missing or malformed.
            AuthError: The token is not valid for this audience and these scopes.
        """
        check_audience(audience)
        required = check_scopes(required_scopes, what="required scope")
        current = self._current()
        principal = current.cache.get(token, self._clock())
        if principal is None:
            principal = current.verifier.authenticate(token, audience=audience)
            current.cache.put(token, principal)
        elif audience not in principal.audience:
            raise TokenInvalid()
        elif self.revocations.is_revoked(principal.token_id):
            raise TokenRevoked()
        return TokenVerifier.authorize(principal, required)

    # -- revoking ------------------------------------------------------------------------
    def revoke_token(self, token: str) -> int:
        """Revoke an access token or a refresh token by value. Possession suffices.

        An access token is revoked by its ``jti``; a refresh token revokes its whole
        family and the access tokens issued with it. Idempotent; an access token that
        has already expired needs nothing and returns 0.

        Returns:
            Sequence of the revocation event (0 if none was needed or for a refresh token).

        Raises:
            InvalidRequest: Empty, oversized, or not a token this service issued.
            Unavailable: The store cannot answer; nothing was written.
        """
        _require(token, "token", MAX_TOKEN_BYTES)
        try:
            if _REFRESH_TOKEN.fullmatch(token):
                return self._revoke_refresh(token)
            try:
                claims = self.verifier.verify_signature(token)
                principal = self.verifier.check_claims(claims, audience=None)
            except TokenExpired:
                return 0
            except (TokenInvalid, TokenMalformed) as err:
                raise InvalidRequest("unknown token") from err
            return self._revoke(principal.token_id, principal.expires_at)
        except StoreUnavailable as err:
            raise Unavailable() from err

    def _revoke_refresh(self, value: str) -> int:
        written = self.store.revoke_refresh_family(refresh_token_hash(value), self._now())
        if written is None:
            raise InvalidRequest("unknown token")
        self._catch_up()
        return 0

    def revoke_token_id(self, token_id: str, *, caller_token: str | None) -> int:
        """Revoke an access token by ``jti``: the caller's own, or any with an admin token
        (scope ``bearer-grpc:admin`` and audience ``bearer-grpc``).

        Args:
            token_id: The ``jti`` to revoke.
            caller_token: The caller's bearer token (None when the call carried none).

        Returns:
            Sequence of the revocation event.

        Raises:
            InvalidRequest: ``token_id`` empty or oversized.
            AuthError: The caller's token is missing or not valid (TokenMissing, ...),
                or lacks the admin scope for another token (InsufficientScope).
            Unavailable: The store cannot answer; nothing was written.
        """
        _require(token_id, "token_id", _MAX_ID_LENGTH)
        if caller_token is None:
            raise TokenMissing()
        claims = self.verifier.verify_signature(caller_token)
        caller = self.verifier.check_claims(claims, audience=None)
        if caller.token_id == token_id:
            expires_at = caller.expires_at
        elif self.revocations.is_revoked(caller.token_id):
            raise TokenRevoked()
        elif ADMIN_SCOPE in caller.scopes and ADMIN_AUDIENCE in caller.audience:
            expires_at = self._now() + MAX_ACCESS_TTL + self.settings.leeway
        else:
            raise InsufficientScope((ADMIN_SCOPE,))
        try:
            return self._revoke(token_id, expires_at)
        except StoreUnavailable as err:
            raise Unavailable() from err

    def _revoke(self, jti: str, expires_at: int) -> int:
        revocation = self.store.revoke(jti, expires_at, self._now())
        self._catch_up()
        return revocation.sequence

    def _catch_up(self) -> None:
        self.revocations.catch_up(self.store, horizon=self._horizon(self._now()))

    # -- keys ----------------------------------------------------------------------------
    def jwks(self) -> str:
        """The published JWKS document."""
        return self.verifier.keys.to_json()


def _require(value: str, name: str, max_length: int) -> None:
    if not value:
        raise InvalidRequest(f"{name} is required")
    if len(value) > max_length:
        raise InvalidRequest(f"{name} is too long")
