"""``bearer_grpc.Verifier``: what a protected sync server checks tokens with."""

from __future__ import annotations

import threading

from bearer_grpc._closing import Closing
from bearer_grpc._verifier.base import Link, TokenServiceLink, VerifierBase
from bearer_grpc._verifier.follower import Follower
from bearer_grpc._verifier.introspection import Introspector
from bearer_grpc._verifier.issuer import IssuerLink
from bearer_grpc._verifier.jwks import JwksFollower
from bearer_grpc._verifier.routes import IssuerRoutes
from bearer_grpc.core.errors import TokenInvalid, VerifierUnavailable
from bearer_grpc.core.tokens import Principal
from bearer_grpc.core.verification import LocalVerification, peek_kid


class Verifier(VerifierBase, Closing):
    """Checks bearer tokens for one audience, for sync ``grpc`` servers.

    Build it with :meth:`from_jwks` (a fixed key set), :meth:`from_token_service` (keys
    and revocations followed from a TokenService), :meth:`remote` (``VerifyToken``),
    :meth:`from_issuer` or :meth:`from_jwks_url` (keys of any OpenID Connect or OAuth
    issuer) or :meth:`introspection` (opaque tokens, RFC 7662); :meth:`any_of` combines
    verifiers of several issuers. A verifier following a TokenService or an identity
    provider's keys starts one daemon thread when it is built and waits up to
    ``startup_timeout`` for the first keys (and the revocation backlog), then returns
    either way and keeps trying in the background. Stop it with :meth:`close` or a
    ``with`` block; after closing it refuses every token with
    :class:`VerifierUnavailable`.

    Args:
        local: The in-memory verification state.
        link: Where keys or answers come from, or None for a fixed key set.
    """

    def __init__(self, local: LocalVerification, link: Link | None = None) -> None:
        super().__init__(local, link)
        self._follower: Follower | JwksFollower | Introspector | None = None
        if isinstance(link, TokenServiceLink):
            self._follower = Follower(local, link)
        elif isinstance(link, IssuerLink):
            self._follower = JwksFollower(local, link)
        elif link is not None:
            self._follower = Introspector(local, link)
        if isinstance(self._follower, Follower | JwksFollower):
            self._follower.start()

    @staticmethod
    def any_of(*verifiers: Verifier) -> AnyIssuer:
        """One verifier for the tokens of several issuers.

        Each token goes by the ``iss`` it names (read strictly, not yet verified, before
        any crypto) to the one verifier configured for exactly that issuer, which then
        checks everything; an issuer none is configured for gets ``TOKEN_INVALID``,
        and causes no fetch. A :class:`Policy` keeps working on
        :attr:`Principal.scopes` whatever the issuer; handlers tell issuers apart by
        :attr:`Principal.issuer`.

        Args:
            verifiers: Verifiers with a fixed issuer (:meth:`from_jwks`,
                :meth:`from_issuer`, :meth:`from_jwks_url`), one per issuer.

        Raises:
            ValueError: None given, one without a fixed issuer, or two for one issuer.
        """
        return AnyIssuer(verifiers)

    @property
    def thread(self) -> threading.Thread | None:
        """The background thread following the TokenService or identity provider.

        None for a fixed key set or introspection.
        """
        follower = self._follower
        return follower.thread if isinstance(follower, Follower | JwksFollower) else None

    def lookup(self, token: str) -> Principal | None:
        """A cached verification of ``token``, re-checked for expiry and revocation.

        Raises:
            TokenRevoked: The cached token was revoked since.
            VerifierUnavailable: The verifier was closed.
        """
        if self._follower is not None and self._follower.closed:
            raise VerifierUnavailable()
        return self.local.lookup(token)

    def verify(self, token: str) -> Principal:
        """Fully verify ``token`` (no scopes: the policy checks those).

        Raises:
            VerifierUnavailable: The token cannot be checked: closed; (local mode) no keys
                or revocation backlog yet, ``startup_timeout`` after the start; (remote
                mode) the TokenService did not answer.
            AuthError: The token is not valid.
        """
        follower = self._follower
        if follower is None:
            return self.local.verify(token)
        if follower.closed:
            raise VerifierUnavailable()
        if isinstance(follower, Introspector):
            return follower.verify(token)
        if isinstance(follower, Follower) and follower.link.remote:
            return follower.verify_remote(token)
        if not follower.ready():
            raise VerifierUnavailable()
        try:
            return self.local.verify(token)
        except TokenInvalid:
            if not self.local.needs_key_refetch(token):
                raise
            follower.refetch_keys(peek_kid(token))  # a key published since the last fetch?
            if self.local.needs_key_refetch(token):
                raise
        return self.local.verify(token)

    def close(self) -> None:
        """Stop the background thread and close the channel (idempotent)."""
        if self._follower is not None:
            self._follower.close()


class AnyIssuer(IssuerRoutes[Verifier], Closing):
    """The verifier :meth:`Verifier.any_of` returns, for sync servers.

    Args:
        verifiers: One verifier per issuer.

    Raises:
        ValueError: See :meth:`Verifier.any_of`.
    """

    def verify(self, token: str) -> Principal:
        """Verify ``token`` with the verifier of the issuer it names.

        Raises:
            TokenMalformed: Not a compact JWS.
            TokenInvalid: An issuer none is configured for, or the token is not valid.
            AuthError: As the chosen verifier's ``verify``.
        """
        return self.route(token).verify(token)
