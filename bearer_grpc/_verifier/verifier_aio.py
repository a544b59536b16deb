"""``bearer_grpc.aio.Verifier``: what a protected ``grpc.aio`` server checks tokens with."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Self

from bearer_grpc._closing import ClosingAio
from bearer_grpc._verifier.base import Link, TokenServiceLink, VerifierBase
from bearer_grpc._verifier.follower_aio import Follower
from bearer_grpc._verifier.introspection_aio import Introspector
from bearer_grpc._verifier.issuer import IssuerLink
from bearer_grpc._verifier.jwks_aio import JwksFollower
from bearer_grpc._verifier.routes import IssuerRoutes
from bearer_grpc.core.errors import TokenInvalid, VerifierUnavailable
from bearer_grpc.core.tokens import Principal
from bearer_grpc.core.verification import LocalVerification, peek_kid


class Verifier(VerifierBase, ClosingAio):
    """Checks bearer tokens for one audience, for ``grpc.aio`` servers.

    The constructors are those of :class:`bearer_grpc.Verifier`. Local verification is
    CPU work in memory and runs inline; only remote verification and introspection
    (and, rarely, a key refetch for an unknown ``kid``) await the network.

    A verifier following a TokenService or an identity provider's keys starts nothing
    when it is built, so it can be
    built before any event loop exists (typically before ``grpc.aio.server(...)``). Its
    background task and channel start on first use inside a running loop (the first
    call the interceptor sees), or earlier with ``await verifier.start()`` or ``async
    with verifier:``; calls in the first ``startup_timeout`` seconds wait for the keys
    and the revocation backlog. Stop it with ``await verifier.aclose()`` (the
    synchronous ``close()`` only cancels the task); after closing it refuses every
    token with :class:`VerifierUnavailable`. One verifier serves one event loop at a
    time; used from a new loop after the old one ended, it starts again there.

    Args:
        local: The in-memory verification state.
        link: The TokenService to follow, or None for a fixed key set.
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

    @staticmethod
    def any_of(*verifiers: Verifier) -> AnyIssuer:
        """One verifier for the tokens of several issuers.

        See :meth:`bearer_grpc.Verifier.any_of`.

        Raises:
            ValueError: None given, one without a fixed issuer, or two for one issuer.
        """
        return AnyIssuer(verifiers)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The background task following the TokenService or identity provider.

        None before it started.
        """
        follower = self._follower
        session = follower.session if isinstance(follower, Follower | JwksFollower) else None
        return session.task if session is not None else None

    async def start(self) -> None:
        """Start following the TokenService now, on the running loop (idempotent).

        In local mode, wait up to ``startup_timeout`` for the first keys and the
        revocation backlog, then return either way (without them, ``verify`` fails closed
        until they arrive).

        Raises:
            VerifierUnavailable: The verifier was closed.
        """
        if isinstance(self._follower, Follower | JwksFollower):
            await self._follower.start()
        elif self._follower is not None and self._follower.closed:
            raise VerifierUnavailable()

    def lookup(self, token: str) -> Principal | None:
        """A cached verification of ``token``, re-checked for expiry and revocation.

        Inside a running loop this also starts the background task if needed.

        Raises:
            TokenRevoked: The cached token was revoked since.
            VerifierUnavailable: The verifier was closed.
        """
        follower = self._follower
        if isinstance(follower, Follower | JwksFollower):
            follower.ensure_started()
        elif follower is not None and follower.closed:
            raise VerifierUnavailable()
        return self.local.lookup(token)

    async def verify(self, token: str) -> Principal:
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
        if isinstance(follower, Introspector):
            return await follower.verify(token)
        refetch: Callable[[str | None], Awaitable[None]]
        if isinstance(follower, Follower):
            session = follower.ensure_started()
            if session is None:  # pragma: no cover - a coroutine runs inside a loop
                raise VerifierUnavailable()
            if follower.link.remote:
                return await follower.verify_remote(session, token)
            if self.local.keys is None or not session.caught_up.is_set():
                await session.wait_first_keys()
            if not follower.feed.caught_up:
                raise VerifierUnavailable()
            refetch = functools.partial(follower.refetch_keys, session)
        else:
            key_session = follower.ensure_started()
            if key_session is None or not await follower.ready(key_session):
                raise VerifierUnavailable()
            refetch = functools.partial(follower.refetch_keys, key_session)
        try:
            return self.local.verify(token)
        except TokenInvalid:
            if not self.local.needs_key_refetch(token):
                raise
            await refetch(peek_kid(token))  # a key published since?
            if self.local.needs_key_refetch(token):
                raise
        return self.local.verify(token)

    def close(self) -> None:
        """Stop following: cancel the background task (it closes its channel).

        Prefer ``await aclose()`` inside the loop, which also waits for that. Idempotent.
        """
        if self._follower is not None:
            self._follower.close()

    async def aclose(self) -> None:
        """Stop following and wait until the task ended and the channel is closed."""
        if self._follower is not None:
            await self._follower.aclose()


class AnyIssuer(IssuerRoutes[Verifier], ClosingAio):
    """The verifier :meth:`Verifier.any_of` returns, for ``grpc.aio`` servers.

    Args:
        verifiers: One verifier per issuer.

    Raises:
        ValueError: See :meth:`bearer_grpc.Verifier.any_of`.
    """

    async def verify(self, token: str) -> Principal:
        """Verify ``token`` with the verifier of the issuer it names.

        Raises:
            TokenMalformed: Not a compact JWS.
            TokenInvalid: An issuer none is configured for, or the token is not valid.
            AuthError: As the chosen verifier's ``verify``.
        """
        return await self.route(token).verify(token)

    async def __aenter__(self) -> Self:
        for verifier in self.verifiers:
            await verifier.start()
        return self

    async def aclose(self) -> None:
        """Close every verifier and wait for their background work to end."""
        for verifier in self.verifiers:
            await verifier.aclose()
