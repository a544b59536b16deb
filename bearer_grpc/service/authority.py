"""The rules of the token service, free of gRPC: issue, verify, revoke, publish keys.

Every method is synchronous and may block on the store or on password hashing; the
gRPC servicer runs them in worker threads. Errors are raised from the one tree in
``bearer_grpc.core.errors`` and mapped to gRPC at the edge.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
from collections.abc import Iterator, Sequence

from bearer_grpc.core.cache import DEFAULT_CACHE_SIZE, TokenCache
from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.errors import (
    Forbidden,
    InsufficientScope,
    InvalidRequest,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenMissing,
    TokenRevoked,
    Unavailable,
)
from bearer_grpc.core.keys import KeyEncryptionKey
from bearer_grpc.core.scopes import check_audience, check_scopes
from bearer_grpc.core.secrets import (
    SecretHasher,
    new_id,
    refresh_token_hash,
)
from bearer_grpc.core.tokens import (
    MAX_TOKEN_BYTES,
    Principal,
    TokenVerifier,
)
from bearer_grpc.core.verification import TrustedKeys
from bearer_grpc.service.grants import (
    Grant,
    Issued,
)
from bearer_grpc.service.hasher import load_secret_hasher
from bearer_grpc.service.issuing import MAX_ID_LENGTH, Issuing, require
from bearer_grpc.service.keyring import KeyRing
from bearer_grpc.service.revocations import RevocationLog
from bearer_grpc.service.settings import (
    ADMIN_AUDIENCE,
    ADMIN_SCOPE,
    EPOCH_SETTING,
    MAX_ACCESS_TTL,
    ServiceSettings,
)
from bearer_grpc.store import (
    Store,
    StoreUnavailable,
)

log = logging.getLogger("bearer_grpc.service")

_REFRESH_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}", re.ASCII)
_NOT_YOURS = "the token was issued to another client"


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
        self._issuing = Issuing(
            store,
            self.keys,
            self.settings,
            clock=clock,
            hasher=lambda: self.hasher,
            on_family_revoked=self._catch_up,
        )
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
        with _store_errors():
            return self._issuing.issue(grant, requested, audience)

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

    def introspect(self, token: str, *, audience: str | None = None) -> Principal:
        """Verify an access token for RFC 7662 introspection: as :meth:`verify` when an
        audience is given; without one, for whichever audience the token names (the
        caller reads it from the principal). Signature, claims, expiry and revocation
        are checked either way.

        Raises:
            InvalidRequest: ``audience`` is malformed.
            AuthError: The token is not valid (for this audience).
        """
        if audience is not None:
            return self.verify(token, audience=audience)
        verifier = self.verifier
        principal = verifier.check_claims(verifier.verify_signature(token), audience=None)
        if self.revocations.is_revoked(principal.token_id):
            raise TokenRevoked()
        return principal

    # -- revoking ------------------------------------------------------------------------
    def revoke_token(self, token: str, *, client_id: str | None = None) -> int:
        """Revoke an access token or a refresh token by value. Possession suffices,
        unless ``client_id`` is given: then only a token issued to that client is
        revoked (RFC 7009 §2.1).

        An access token is revoked by its ``jti``; a refresh token revokes its whole
        family and the access tokens issued with it. Idempotent; an access token that
        has already expired needs nothing and returns 0.

        Returns:
            Sequence of the revocation event (0 if none was needed or for a refresh token).

        Raises:
            InvalidRequest: Empty, oversized, or not a token this service issued.
            Forbidden: ``client_id`` is given and the token was issued to another client.
            Unavailable: The store cannot answer; nothing was written.
        """
        require(token, "token", MAX_TOKEN_BYTES)
        if _REFRESH_TOKEN.fullmatch(token):
            with _store_errors():
                if client_id is not None:
                    self._check_refresh_owner(token, client_id)
                return self._revoke_refresh(token)
        try:
            claims = self.verifier.verify_signature(token)
            principal = self.verifier.check_claims(claims, audience=None)
        except TokenExpired:
            return 0
        except (TokenInvalid, TokenMalformed) as err:
            raise InvalidRequest("unknown token") from err
        if client_id is not None and principal.client_id != client_id:
            raise Forbidden(_NOT_YOURS)
        with _store_errors():
            return self._revoke(principal.token_id, principal.expires_at)

    def _check_refresh_owner(self, value: str, client_id: str) -> None:
        found = self.store.get_refresh_token(refresh_token_hash(value))
        if found is None:
            raise InvalidRequest("unknown token")
        if found.client_id != client_id:
            raise Forbidden(_NOT_YOURS)

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
        require(token_id, "token_id", MAX_ID_LENGTH)
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
        with _store_errors():
            return self._revoke(token_id, expires_at)

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


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """A store that cannot answer becomes :class:`Unavailable` (nothing was written)."""
    try:
        yield
    except StoreUnavailable as err:
        raise Unavailable() from err
