"""The constructors of verifiers for tokens of any identity provider, shared by both flavours.

Keys by discovery or from a JWKS URL, and opaque tokens by introspection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from bearer_grpc._verifier.issuer import HttpSettings, IntrospectionLink, IssuerLink
from bearer_grpc.core.backoff import Backoff
from bearer_grpc.core.cache import DEFAULT_CACHE_SIZE
from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.discovery import Refresh
from bearer_grpc.core.profiles import RFC9068, TokenProfile
from bearer_grpc.core.tokens import DEFAULT_LEEWAY
from bearer_grpc.core.verification import LocalVerification


class ProviderConstructors:
    """``from_issuer``, ``from_jwks_url`` and ``introspection`` of ``Verifier``."""

    if TYPE_CHECKING:  # defined by VerifierBase

        def __init__(self, local: LocalVerification, link: Any = None) -> None: ...

    @classmethod
    def from_issuer(
        cls,
        issuer: str,
        *,
        audience: str,
        profile: TokenProfile | None = None,
        ca_file: str | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        refresh: Refresh | None = None,
        refetch_interval: float = 30.0,
        startup_timeout: float = 5.0,
        leeway: int = DEFAULT_LEEWAY,
        cache_size: int = DEFAULT_CACHE_SIZE,
        backoff: Backoff | None = None,
        clock: Clock = system_clock,
    ) -> Self:
        """A local verifier for the tokens of an OpenID Connect or OAuth 2.0 issuer.

        Finds the issuer's ``jwks_uri`` by OpenID Connect discovery
        (``{issuer}/.well-known/openid-configuration``), else RFC 8414 metadata
        (``/.well-known/oauth-authorization-server`` inserted before the issuer's
        path); the document's ``issuer`` must equal ``issuer`` exactly. Then keeps the
        keys as :meth:`from_jwks_url` does.

        Args:
            issuer: The issuer URL, exactly as its tokens' ``iss`` (``https://``;
                ``http://`` only on a loopback host).
            audience: This service's audience; tokens must name it in ``aud``.
            profile: What the issuer's tokens look like (default
                :meth:`TokenProfile.rfc9068`; presets for Keycloak, Okta, Entra, Auth0).
            ca_file: PEM file of the CAs to trust (default: the system's).
            connect_timeout: Seconds to connect (default 2).
            read_timeout: Seconds an answer may be silent, and with ``connect_timeout``
                the longest an answer may take (default 5).
            refresh: Bounds of the background refresh (default: ``Cache-Control``
                ``max-age`` within 60 s to 1 h, 5 min without one).
            refetch_interval: Least time between two refetches for the same unknown
                ``kid`` (default 30 s; any unknown ``kid``: once a second at most).
            startup_timeout: Longest wait for the first keys (default 5 s).
            leeway: Clock skew tolerated, seconds (default 30).
            cache_size: Verified tokens kept in memory (default 10,000; 0 disables).
            backoff: Delays between attempts after a failed refresh (default 1 s
                growing to 30 s).
            clock: Wall-clock time source.

        Raises:
            ValueError: The issuer is not an allowed URL, or the profile refuses the
                audience.
        """
        return cls.from_jwks_url(
            None,
            issuer=issuer,
            audience=audience,
            profile=profile,
            ca_file=ca_file,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            refresh=refresh,
            refetch_interval=refetch_interval,
            startup_timeout=startup_timeout,
            leeway=leeway,
            cache_size=cache_size,
            backoff=backoff,
            clock=clock,
        )

    @classmethod
    def from_jwks_url(
        cls,
        url: str | None,
        *,
        issuer: str,
        audience: str,
        profile: TokenProfile | None = None,
        ca_file: str | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        refresh: Refresh | None = None,
        refetch_interval: float = 30.0,
        startup_timeout: float = 5.0,
        leeway: int = DEFAULT_LEEWAY,
        cache_size: int = DEFAULT_CACHE_SIZE,
        backoff: Backoff | None = None,
        clock: Clock = system_clock,
    ) -> Self:
        """A local verifier for an issuer whose keys are at ``url`` (no discovery).

        The JWKS is fetched in the background: first when the verifier starts (until
        then, and for ``startup_timeout`` at most, calls wait; without keys they fail
        closed with :class:`VerifierUnavailable`), then again when the answer's
        ``Cache-Control: max-age`` says, within ``refresh``'s bounds, by a conditional
        GET (``If-None-Match`` with the last ``ETag``). After the first keys, an
        outage keeps the last known good keys. A token naming an unknown ``kid``
        refetches the keys once (single-flight), at most once per
        ``refetch_interval`` for that ``kid`` and once a second overall. A key that
        goes takes its cached tokens with it.

        Each answer must be status 200 (or 304 to a conditional GET), at most 256 KiB,
        within the timeouts; redirects are not followed. Each key must pass hygiene
        (asymmetric, public parts only, ``use`` ``sig`` or absent, ``alg`` consistent
        with the key, RSA of at least 2048 bits); a key that fails is left out, not the
        set. Nothing in a token (``jku``, ``x5u``, ``iss``) ever chooses where to fetch.

        Args:
            url: The JWKS URL (``https://``; ``http://`` only on a loopback host);
                None: found by discovery, as :meth:`from_issuer` does.
            issuer: The exact ``iss`` required.
            audience: This service's audience; tokens must name it in ``aud``.
            profile: See :meth:`from_issuer`.
            ca_file: See :meth:`from_issuer`.
            connect_timeout: See :meth:`from_issuer`.
            read_timeout: See :meth:`from_issuer`.
            refresh: See :meth:`from_issuer`.
            refetch_interval: See :meth:`from_issuer`.
            startup_timeout: See :meth:`from_issuer`.
            leeway: See :meth:`from_issuer`.
            cache_size: See :meth:`from_issuer`.
            backoff: See :meth:`from_issuer`.
            clock: Wall-clock time source.

        Raises:
            ValueError: The URL is not allowed, or the profile refuses the audience.
        """
        link = IssuerLink(
            issuer,
            jwks_url=url,
            http=HttpSettings(ca_file, connect_timeout, read_timeout),
            refresh=refresh or Refresh(),
            refetch_interval=refetch_interval,
            startup_timeout=startup_timeout,
            backoff=backoff or Backoff(initial=1.0, maximum=30.0),
        )
        local = LocalVerification(
            issuer=link.issuer,
            audience=audience,
            clock=clock,
            leeway=leeway,
            cache_size=cache_size,
            profile=profile or RFC9068,
        )
        return cls(local, link)

    @classmethod
    def introspection(
        cls,
        url: str,
        *,
        client_id: str,
        client_secret: str,
        audience: str,
        issuer: str | None = None,
        max_cache_seconds: float = 60.0,
        ca_file: str | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Clock = system_clock,
    ) -> Self:
        """A verifier that checks (opaque) tokens with RFC 7662 token introspection.

        Each token the cache does not hold is POSTed to ``url`` with this service's
        credentials (``client_secret_basic``). An ``active`` answer whose ``aud`` names
        ``audience`` is cached until the earlier of the token's ``exp`` and
        ``max_cache_seconds``: that is how long a token revoked at the issuer may still
        pass here (the revocation delay). An inactive answer is refused
        (``TOKEN_INVALID``); an answer without ``exp`` is used once, not cached. When
        the endpoint cannot be reached, or answers other than 200 with a JSON object,
        the call is refused with :class:`VerifierUnavailable` (fail closed).

        Args:
            url: The introspection endpoint (``https://``; ``http://`` only on loopback).
            client_id: This service's client id at the issuer.
            client_secret: Its secret (never logged or shown in ``repr``).
            audience: This service's audience; the answer's ``aud`` must name it.
            issuer: The ``iss`` answers must name when they name one (default: any).
            max_cache_seconds: Longest time an active answer is trusted (default 60).
            ca_file: PEM file of the CAs to trust (default: the system's).
            connect_timeout: Seconds to connect (default 2).
            read_timeout: Seconds an answer may be silent (default 5).
            cache_size: Answers kept in memory (default 10,000; 0 disables).
            clock: Wall-clock time source.

        Raises:
            ValueError: The URL is not allowed, or a credential is empty.
        """
        link = IntrospectionLink(
            url,
            client_id,
            client_secret,
            issuer=issuer,
            max_cache_seconds=max_cache_seconds,
            http=HttpSettings(ca_file, connect_timeout, read_timeout),
        )
        local = LocalVerification(
            issuer=issuer, audience=audience, clock=clock, leeway=0, cache_size=cache_size
        )
        return cls(local, link)
