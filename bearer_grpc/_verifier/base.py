"""What both verifier flavours share: the constructors and the link to a TokenService.

The constructors of verifiers that talk to an identity provider over HTTP are in
:mod:`.providers`, whose class this one extends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import grpc

from bearer_grpc._channel import Endpoint
from bearer_grpc._verifier.issuer import IntrospectionLink, IssuerLink
from bearer_grpc._verifier.providers import ProviderConstructors
from bearer_grpc.core.backoff import Backoff
from bearer_grpc.core.cache import DEFAULT_CACHE_SIZE
from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.errors import AuthError
from bearer_grpc.core.keys import PublicKeySet
from bearer_grpc.core.profiles import RFC9068, TokenProfile
from bearer_grpc.core.tokens import DEFAULT_LEEWAY, Principal
from bearer_grpc.core.verification import LocalVerification


@dataclass(frozen=True)
class TokenServiceLink:
    """Where a verifier's TokenService is and how the verifier follows it.

    Attributes:
        endpoint: The TokenService's address, credentials and reconnection bounds.
        remote: Verify with ``VerifyToken`` instead of locally with the JWKS.
        timeout: Deadline of each unary call (``GetJwks``, ``VerifyToken``), seconds.
        refetch_interval: Least time between two key refetches for the same unknown
            ``kid``, seconds.
        startup_timeout: Longest wait for the first key set and revocation backlog.
        resync_interval: Lifetime of one ``WatchRevocations`` stream, seconds. When it
            ends the verifier prunes expired revocations, refetches the keys (so retired
            keys are dropped) and resumes the stream; it also bounds how long a silently
            dead connection goes unnoticed.
    """

    endpoint: Endpoint
    remote: bool = False
    timeout: float = 2.0
    refetch_interval: float = 30.0
    startup_timeout: float = 5.0
    resync_interval: float = 60.0

    def __post_init__(self) -> None:
        if not self.endpoint.target:
            raise ValueError("target is required")
        if self.timeout <= 0 or self.resync_interval <= 0:
            raise ValueError("timeout and resync_interval must be positive")
        if self.refetch_interval < 0 or self.startup_timeout < 0:
            raise ValueError("refetch_interval and startup_timeout must not be negative")

    @property
    def target(self) -> str:
        """The TokenService address."""
        return self.endpoint.target

    @property
    def backoff(self) -> Backoff:
        """Delays between reconnection attempts."""
        return self.endpoint.backoff


Link = TokenServiceLink | IssuerLink | IntrospectionLink
"""Where a verifier's keys or answers come from."""


class VerifierBase(ProviderConstructors):
    """What sync and asyncio verifiers share: constructors and the verification state.

    Args:
        local: The in-memory verification state.
        link: The TokenService to follow, the identity provider whose keys to keep or
            whose introspection endpoint to ask, or None for a fixed key set.
    """

    def __init__(self, local: LocalVerification, link: Link | None = None) -> None:
        self.local = local
        self.link = link

    def __repr__(self) -> str:
        name, audience = type(self).__name__, self.local.audience
        if self.link is None:
            return f"{name}(issuer={self.local.issuer!r}, audience={audience!r})"
        if isinstance(self.link, TokenServiceLink):
            mode = "remote" if self.link.remote else "local"
        else:
            mode = "introspection" if isinstance(self.link, IntrospectionLink) else "jwks"
        return f"{name}(target={self.link.target!r}, audience={audience!r}, mode={mode})"

    def recheck(self, principal: Principal) -> AuthError | None:
        """Whether the token of a running stream has expired or been revoked since its start.

        The interceptors ask before every message.

        Returns:
            The error to end the call with, or None while the token is still good.
        """
        return self.local.recheck(principal)

    @classmethod
    def from_jwks(
        cls,
        jwks: Mapping[str, Any] | str,
        *,
        issuer: str,
        audience: str,
        leeway: int = DEFAULT_LEEWAY,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Clock = system_clock,
        profile: TokenProfile | None = None,
    ) -> Self:
        """A verifier over a fixed key set (from a file or configuration).

        Args:
            jwks: A JWKS object or its JSON text. Only these keys are ever trusted.
            issuer: The exact ``iss`` required.
            audience: This service's audience; tokens must name it in ``aud``.
            leeway: Clock skew tolerated, seconds (default 30).
            cache_size: Verified tokens kept in memory (default 10,000; 0 disables).
            clock: Wall-clock time source.
            profile: What the issuer's tokens look like (default
                :meth:`TokenProfile.rfc9068`).

        Raises:
            KeyMaterialError: The key set is malformed or breaks a hygiene rule (every
                key must pass).
            ValueError: The profile refuses the audience.
        """
        keys = PublicKeySet.from_json(jwks) if isinstance(jwks, str) else PublicKeySet(jwks)
        local = LocalVerification(
            issuer=issuer,
            audience=audience,
            clock=clock,
            keys=keys,
            leeway=leeway,
            cache_size=cache_size,
            profile=profile or RFC9068,
        )
        return cls(local)

    @classmethod
    def from_token_service(
        cls,
        target: str,
        *,
        audience: str,
        credentials: grpc.ChannelCredentials | None = None,
        leeway: int = DEFAULT_LEEWAY,
        cache_size: int = DEFAULT_CACHE_SIZE,
        refetch_interval: float = 30.0,
        startup_timeout: float = 5.0,
        timeout: float = 2.0,
        resync_interval: float = 60.0,
        backoff: Backoff | None = None,
        clock: Clock = system_clock,
    ) -> Self:
        """A local verifier that takes its issuer and keys from a TokenService.

        Keys and issuer come from ``GetJwks`` (and must pass :class:`PublicKeySet`
        hygiene); revocations arrive by ``WatchRevocations``, resumed after the last
        sequence seen, so none is missed. On the call path only a token whose ``kid`` is
        unknown touches the network: it refetches the keys, at most once per
        ``refetch_interval`` for each ``kid`` and once a second overall; if the ``kid``
        is still unknown the token is invalid.

        Fail closed, then last known good: until the first key set and the announced
        revocation backlog have arrived, ``verify`` raises :class:`VerifierUnavailable`;
        after that, an outage of the TokenService does not stop verification. When the
        TokenService's store is replaced or restored, the verifier follows its
        revocations again from the start. The protocol is described in
        docs/design/revocation-stream.md; when each flavour starts and stops its
        background work is on its ``Verifier`` class.

        Args:
            target: The TokenService address, ``host:port``.
            audience: This service's audience; tokens must name it in ``aud``.
            credentials: Channel credentials (TLS, mTLS); None for plaintext.
            leeway: Clock skew tolerated, seconds (default 30).
            cache_size: Verified tokens kept in memory (default 10,000; 0 disables).
            refetch_interval: Least time between two refetches for the same unknown
                ``kid`` (default 30 s).
            startup_timeout: Longest wait for the first keys and revocation backlog
                (default 5 s).
            timeout: Deadline of each ``GetJwks`` call (default 2 s).
            resync_interval: Seconds between routine key refreshes, revocation pruning
                and stream renewals (default 60).
            backoff: Delays between reconnection attempts (default :class:`Backoff()`).
            clock: Wall-clock time source.
        """
        link = TokenServiceLink(
            Endpoint(target, credentials, backoff or Backoff()),
            timeout=timeout,
            refetch_interval=refetch_interval,
            startup_timeout=startup_timeout,
            resync_interval=resync_interval,
        )
        local = LocalVerification(
            issuer=None, audience=audience, clock=clock, leeway=leeway, cache_size=cache_size
        )
        return cls(local, link)

    @classmethod
    def remote(
        cls,
        target: str,
        *,
        audience: str,
        credentials: grpc.ChannelCredentials | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        timeout: float = 2.0,
        resync_interval: float = 60.0,
        backoff: Backoff | None = None,
        clock: Clock = system_clock,
    ) -> Self:
        """A verifier that asks the TokenService (``VerifyToken``) about each new token.

        A positive answer is cached until the token's ``exp``; a negative one raises the
        :class:`AuthError` its ``reason`` names (``TOKEN_EXPIRED`` -> ``TokenExpired``,
        ...). When the TokenService cannot answer in ``timeout`` seconds the call is
        refused with :class:`VerifierUnavailable` (fail closed). Revocations are followed
        with ``WatchRevocations`` as for :meth:`from_token_service` (same lifecycle), so
        a cached answer is refused as soon as its token is revoked.

        Args:
            target: The TokenService address, ``host:port``.
            audience: This service's audience, sent with every ``VerifyToken``.
            credentials: Channel credentials (TLS, mTLS); None for plaintext.
            cache_size: Answers kept in memory (default 10,000; 0 disables).
            timeout: Deadline of each ``VerifyToken`` call (default 2 s).
            resync_interval: Seconds between revocation pruning and stream renewals.
            backoff: Delays between reconnection attempts (default :class:`Backoff()`).
            clock: Wall-clock time source.
        """
        link = TokenServiceLink(
            Endpoint(target, credentials, backoff or Backoff()),
            remote=True,
            timeout=timeout,
            resync_interval=resync_interval,
        )
        # The TokenService applies its own leeway; a cached answer lives until exp.
        local = LocalVerification(
            issuer=None, audience=audience, clock=clock, leeway=0, cache_size=cache_size
        )
        return cls(local, link)
