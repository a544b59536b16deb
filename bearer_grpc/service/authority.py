"""The rules of the token service, free of gRPC: issue, verify, revoke, publish keys.

Every face of the TokenService (gRPC, HTTP) calls the same methods, passing the caller's
network address (``peer``) and, over mTLS, its client certificate as data: throttling of
failed sign-ins and the password pool's fair shares are kept here, by peer. Methods are
synchronous and may block on the store or on password hashing (run them in worker
threads), except :meth:`TokenAuthority.issue_async`, which an event loop awaits. Errors
are raised from the one tree in ``bearer_grpc.core.errors`` and mapped at the edge.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import threading
from collections.abc import Sequence

from bearer_grpc.core.cache import DEFAULT_CACHE_SIZE, TokenCache
from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.errors import TokenInvalid, TokenRevoked
from bearer_grpc.core.keys import KeyEncryptionKey
from bearer_grpc.core.scopes import check_audience, check_request, check_scopes
from bearer_grpc.core.secrets import SecretHasher, new_id
from bearer_grpc.core.tokens import Principal, TokenVerifier
from bearer_grpc.core.verification import TrustedKeys
from bearer_grpc.service.client_credentials import client_credentials
from bearer_grpc.service.client_grants import ClientGrants
from bearer_grpc.service.grants import ClientCredentialsGrant, Grant, Issued, PasswordGrant
from bearer_grpc.service.hasher import load_secret_hasher
from bearer_grpc.service.issuing import Issuing
from bearer_grpc.service.keyring import KeyRing
from bearer_grpc.service.pool import PasswordPool
from bearer_grpc.service.revocations import RevocationLog
from bearer_grpc.service.revoking import Revoking, store_errors
from bearer_grpc.service.settings import EPOCH_SETTING, ServiceSettings
from bearer_grpc.service.throttle import LoginThrottle, ThrottlePolicy
from bearer_grpc.store import Store

log = logging.getLogger("bearer_grpc.service")


class TokenAuthority:
    """Issues, verifies and revokes tokens for one deployment.

    Args:
        store: Shared state (accounts, keys, refresh tokens, revocations).
        settings: Issuing and verification settings.
        kek: Key-encryption key for private keys at rest, or None.
        clock: Wall-clock time source.
        cache_size: Verified tokens :meth:`verify` keeps (0 disables the cache).
        throttle: Allowances of failed sign-ins (the documented defaults when None).

    Attributes:
        throttle: Counts failed sign-ins (in the store) and holds back guessers.
        passwords: The password pool, shared fairly by peers.
        key_removals: How many times a key left the published set (a withdrawn or
            retired key): the server ends its revocation streams then, so that verifiers
            refetch the keys at once.
        epoch_changes: How many times the store's revocation log got a new epoch while
            this process ran (``bearer-grpc store new-epoch``): the log is read again
            from sequence 0, and the server ends its revocation streams, so that
            verifiers follow it again from the start.
    """

    def __init__(
        self,
        store: Store,
        settings: ServiceSettings | None = None,
        *,
        kek: KeyEncryptionKey | None = None,
        clock: Clock = system_clock,
        cache_size: int = DEFAULT_CACHE_SIZE,
        throttle: ThrottlePolicy | None = None,
    ) -> None:
        self.settings = settings or ServiceSettings()
        self.store = store
        self.revocations = RevocationLog()
        self.keys = KeyRing(store, kek=kek, retention=self.settings.key_retention)
        self.throttle = LoginThrottle(store, clock, throttle)
        self.passwords = PasswordPool(
            self.settings.password_workers,
            self.settings.password_queue,
            self.settings.password_per_peer,
        )
        self.key_removals = 0
        self.epoch_changes = 0
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
            throttle=self.throttle,
            on_family_revoked=self._catch_up,
        )
        self._client_grants = ClientGrants(store, self.throttle)
        self._revoking = Revoking(
            store,
            self.revocations,
            lambda: self.verifier,
            self.settings,
            clock=clock,
            caught_up=self._catch_up,
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
        """Revocations of tokens that expired before this are forgotten (two leeways ago).

        A verifier accepts a token until ``exp + leeway`` by its own clock, which may lag
        ours by up to a leeway too.
        """
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
            self._follow_epoch()
            self.keys.load(now=now, algorithm=self.settings.key_algorithm)
            current = self._trusted
            if current is not None and not set(current.verifier.keys) <= {
                r.kid for r in self.keys.published(now)
            }:
                self.key_removals += 1
            verifier = TokenVerifier(
                self.keys.public_key_set(now),
                issuer=self.settings.issuer,
                clock=self._clock,
                leeway=self.settings.leeway,
                is_revoked=self.revocations.is_revoked,
            )
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

    def _follow_epoch(self) -> None:
        """Start the revocation log over when the store's epoch changed (a restored backup).

        Its sequences no longer continue the ones read.
        """
        epoch = self.store.get_setting(EPOCH_SETTING)
        if epoch is None or epoch == self.epoch:
            return
        if self.epoch:
            self.revocations.restart()
            self.epoch_changes += 1
            log.warning("new revocation epoch: reading the revocation log again from the start")
        self.epoch = epoch

    def housekeeping(self) -> int:
        """Delete expired revocations, refresh tokens, throttle counts, old keys and audit events.

        Keys go once retired, audit events once older than the audit retention.
        """
        now = self._now()
        retention = self.settings.audit_retention
        removed = self.store.prune(
            self._horizon(now),
            throttle_horizon=self.throttle.horizon(),
            audit_horizon=now - retention if retention else 0,
        )
        return removed + self.keys.retire(now)

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

    def close(self) -> None:
        """Cancel waiting password checks and stop the password threads."""
        self.passwords.close()

    # -- issuing -----------------------------------------------------------------------
    def issue(
        self,
        grant: Grant,
        *,
        scopes: Sequence[str] = (),
        audience: str = "",
        peer: str = "",
        certificate: bytes | None = None,
    ) -> Issued:
        """Exchange a grant for an access token, blocking the calling thread.

        Password checks run on the password pool (this thread waits for them).

        Args:
            grant: What the caller presents.
            scopes: Requested scopes (empty: all the account may have).
            audience: Requested audience (empty: the account's default).
            peer: The caller's network address (``context.peer()`` over gRPC): failed
                sign-ins and the password pool's shares are counted by it.
            certificate: The PEM client certificate of an mTLS call, or None; a
                certificate-bound client needs one, and its tokens are bound to it.

        Raises:
            InvalidRequest: A field is empty, oversized or malformed.
            InvalidGrant: Credentials or refresh token not accepted.
            LoginThrottled: Too many failed sign-ins for the account or from the peer.
            Overloaded: The password pool (or this peer's share of it) is full.
            Forbidden: A requested scope or audience is not allowed.
            Unavailable: The store cannot answer; nothing was written.
        """
        work = self._issuing_work(grant, scopes, audience, peer, certificate)
        if isinstance(grant, PasswordGrant):
            return self.passwords.submit(peer, work).result()
        return work()

    async def issue_async(
        self,
        grant: Grant,
        *,
        scopes: Sequence[str] = (),
        audience: str = "",
        peer: str = "",
        certificate: bytes | None = None,
    ) -> Issued:
        """:meth:`issue` for an event loop.

        A password check runs on the password pool (cancelling the awaiting task drops one
        that has not started). Client credentials are checked and signed on the loop, with
        the client's account held in memory and the confirmations of concurrent grants sent
        to the store together (:mod:`.client_grants`); the rule is the same. A refresh is
        :meth:`issue` in a worker thread.
        """
        if isinstance(grant, PasswordGrant):
            work = self._issuing_work(grant, scopes, audience, peer, certificate)
            return await asyncio.wrap_future(self.passwords.submit(peer, work))
        if isinstance(grant, ClientCredentialsGrant):
            requested, audience = check_request(scopes, audience)
            steps = client_credentials(self._issuing, grant, requested, audience, peer, certificate)
            return await self._client_grants.run(steps)
        return await asyncio.to_thread(
            self.issue, grant, scopes=scopes, audience=audience, peer=peer, certificate=certificate
        )

    def _issuing_work(
        self,
        grant: Grant,
        scopes: Sequence[str],
        audience: str,
        peer: str,
        certificate: bytes | None,
    ) -> functools.partial[Issued]:
        """The checked request as one call (the checks run at once, not in the pool)."""
        requested, audience = check_request(scopes, audience)
        return functools.partial(self._issue, grant, requested, audience, peer, certificate)

    def _issue(
        self,
        grant: Grant,
        scopes: tuple[str, ...],
        audience: str,
        peer: str,
        certificate: bytes | None,
    ) -> Issued:
        with store_errors():
            return self._issuing.issue(grant, scopes, audience, peer=peer, certificate=certificate)

    # -- verifying -----------------------------------------------------------------------
    def verify(
        self, token: str, *, audience: str, required_scopes: Sequence[str] = ()
    ) -> Principal:
        """Verify an access token (see :meth:`TokenVerifier.verify`).

        A token verified before is found in a bounded cache by its exact string; the
        cache holds the verified principal, never a decision, so every hit is checked
        again for expiry (with the leeway, by this authority's clock), audience,
        revocation (of its ``jti``, its refresh family or its subject) and the required
        scopes, in the order a full verification checks them. Entries go when
        :meth:`sync` stops trusting a key.

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
            if self.revocations.refuses(principal):
                raise TokenRevoked()
            current.cache.put(token, principal)
        elif audience not in principal.audience:
            raise TokenInvalid()
        elif self.revocations.refuses(principal):
            raise TokenRevoked()
        return TokenVerifier.authorize(principal, required)

    def introspect(self, token: str, *, audience: str | None = None) -> Principal:
        """Verify an access token for RFC 7662 introspection.

        As :meth:`verify` when an audience is given; without one, for whichever audience the
        token names (the caller reads it from the principal). Signature, claims, expiry and
        revocation are checked either way.

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
        """Revoke an access or refresh token by value (see :meth:`Revoking.revoke_token`)."""
        return self._revoking.revoke_token(token, client_id=client_id)

    def revoke_token_id(self, token_id: str, *, caller_token: str | None) -> int:
        """Revoke an access token by ``jti`` (see :meth:`Revoking.revoke_token_id`)."""
        return self._revoking.revoke_token_id(token_id, caller_token=caller_token)

    def _catch_up(self) -> None:
        self.revocations.catch_up(self.store, horizon=self._horizon(self._now()))

    # -- keys ----------------------------------------------------------------------------
    def jwks(self) -> str:
        """The published JWKS document."""
        return self.verifier.keys.to_json()
