"""Keys and answers from an identity provider over HTTPS, written once for both flavours.

- :class:`IssuerLink` and :class:`IntrospectionLink`: where the provider is and how a
  verifier talks to it (checked when the verifier is built).
- :class:`KeyFetch`: one refresh of the keys as a generator of :class:`HttpGet`
  requests (discovery when there is no JWKS URL yet, then a conditional GET of the
  JWKS), which the sync and the asyncio clients drive (:mod:`.http`,
  :mod:`.http_aio`). An unusable answer keeps the last known good keys.
- :func:`introspection_request`, :func:`accept_introspection`: an RFC 7662 call and
  what its answer means (an unusable answer fails closed).
- :func:`client_options`: the one configuration of every HTTP client: TLS with the
  system CAs or the caller's CA file, connect and read timeouts, no redirects, no
  proxy or credentials from the environment.

Nothing a token says decides where a request goes: the URLs come from the
configuration, or from the configured issuer's own discovery document.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from bearer_grpc._channel import LinkLog
from bearer_grpc.core.backoff import Backoff
from bearer_grpc.core.discovery import (
    MAX_DISCOVERY_BYTES,
    MAX_JWKS_BYTES,
    Refresh,
    accept_status,
    check_issuer,
    check_url,
    discovery_urls,
    read_discovery,
    read_json,
    refresh_after,
)
from bearer_grpc.core.errors import FetchError, KeyMaterialError, VerifierUnavailable
from bearer_grpc.core.introspection import (
    basic_credentials,
    introspected,
    introspection_form,
    trusted_until,
)
from bearer_grpc.core.keys import PublicKeySet
from bearer_grpc.core.tokens import Principal
from bearer_grpc.core.verification import LocalVerification

log = logging.getLogger("bearer_grpc.verifier")

USER_AGENT: Final = "bearer-grpc"
JWKS_ACCEPT: Final = "application/jwk-set+json, application/json"


@dataclass(frozen=True)
class HttpSettings:
    """How a verifier's HTTP client connects.

    Attributes:
        ca_file: PEM file of the CAs to trust for ``https://``; None: the system's.
        connect_timeout: Seconds to set up a connection.
        read_timeout: Seconds an answer may be silent.
    """

    ca_file: str | None = None
    connect_timeout: float = 2.0
    read_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("timeouts must be positive")


def client_options(settings: HttpSettings) -> dict[str, Any]:
    """Keyword arguments of ``httpx.Client`` and ``httpx.AsyncClient``."""
    tls = ssl.create_default_context(cafile=settings.ca_file)
    timeout = settings.read_timeout
    return {
        "verify": tls,
        "timeout": httpx.Timeout(timeout, connect=settings.connect_timeout, pool=timeout),
        "follow_redirects": False,
        "trust_env": False,
        # identity: a compressed answer is not inflated past its cap, it is refused
        "headers": {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    }


@dataclass(frozen=True)
class IssuerLink:
    """Where an identity provider's keys are and how a verifier keeps them.

    Attributes:
        issuer: The exact ``iss`` of its tokens.
        jwks_url: Its JWKS URL; None: read ``jwks_uri`` from its discovery document.
        http: Connection settings.
        refresh: Bounds of the background refresh interval (``Cache-Control`` decides
            within them).
        refetch_interval: Least time between two refetches for the same unknown
            ``kid``, seconds.
        startup_timeout: Longest wait for the first keys when the verifier starts.
        backoff: Delays between attempts after a failed refresh.
    """

    issuer: str
    jwks_url: str | None = None
    http: HttpSettings = field(default_factory=HttpSettings)
    refresh: Refresh = field(default_factory=Refresh)
    refetch_interval: float = 30.0
    startup_timeout: float = 5.0
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=1.0, maximum=30.0))

    def __post_init__(self) -> None:
        if self.jwks_url is None:
            check_issuer(self.issuer)
        else:
            check_url(self.jwks_url, what="jwks_url")
            if not self.issuer:
                raise ValueError("an issuer is required")
        if self.refetch_interval < 0 or self.startup_timeout < 0:
            raise ValueError("refetch_interval and startup_timeout must not be negative")

    @property
    def target(self) -> str:
        """Where keys are fetched from, for logs and ``repr``."""
        return self.jwks_url or self.issuer


@dataclass(frozen=True)
class IntrospectionLink:
    """An RFC 7662 introspection endpoint and the credentials a verifier calls it with.

    Attributes:
        url: The endpoint.
        client_id: This service's client id there.
        client_secret: Its secret (hidden from ``repr``).
        issuer: The ``iss`` answers must name, if they name one (None: any).
        max_cache_seconds: How long an ``active`` answer is trusted at most.
        http: Connection settings.
    """

    url: str
    client_id: str
    client_secret: str = field(repr=False)
    issuer: str | None = None
    max_cache_seconds: float = 60.0
    http: HttpSettings = field(default_factory=HttpSettings)

    def __post_init__(self) -> None:
        check_url(self.url, what="introspection URL")
        if not self.client_id or not self.client_secret:
            raise ValueError("client_id and client_secret are required")
        if self.max_cache_seconds < 0:
            raise ValueError("max_cache_seconds must not be negative")

    @property
    def target(self) -> str:
        """The endpoint, for logs and ``repr``."""
        return self.url


@dataclass(frozen=True)
class HttpGet:
    """A GET the flow asks for, and the largest answer it accepts."""

    url: str
    headers: dict[str, str]
    limit: int


@dataclass(frozen=True)
class HttpAnswer:
    """What came back: status, the headers the flow reads, and the body (capped)."""

    status: int
    body: bytes = b""
    etag: str | None = None
    cache_control: str | None = None


Flow = Generator[HttpGet, HttpAnswer, float]
"""A key refresh: yields requests, is sent their answers, returns the seconds until the
next refresh. Raises :class:`FetchError` or ``KeyMaterialError`` for an unusable answer."""


class KeyFetch:
    """The keys of one identity provider: discovery, conditional GETs, the keys applied.

    Driven by one writer at a time (the sync driver holds a lock, the asyncio one runs
    on one loop).

    Args:
        local: The verification state whose keys are replaced.
        link: The provider.
    """

    def __init__(self, local: LocalVerification, link: IssuerLink) -> None:
        self.local = local
        self.link = link
        self.jwks_uri = link.jwks_url
        self._etag: str | None = None

    def flow(self) -> Flow:
        """One refresh (see :data:`Flow`)."""
        if self.jwks_uri is None:
            self.jwks_uri = yield from self._discover()
        headers = {"Accept": JWKS_ACCEPT}
        if self._etag is not None and self.local.keys is not None:
            headers["If-None-Match"] = self._etag
        answer = yield HttpGet(self.jwks_uri, headers, MAX_JWKS_BYTES)
        if accept_status(answer.status, have_cached="If-None-Match" in headers):
            keys, skipped = PublicKeySet.skipping(read_json(answer.body))
            self.local.set_keys(keys, issuer=self.link.issuer)
            self._etag = answer.etag
            if skipped:
                log.info(
                    "identity provider's JWKS: keys left out",
                    extra={"target": self.jwks_uri, "skipped": list(skipped)},
                )
        return refresh_after(answer.cache_control, self.link.refresh)

    def _discover(self) -> Generator[HttpGet, HttpAnswer, str]:
        """``jwks_uri`` from OpenID Connect discovery, else RFC 8414 metadata."""
        failure: FetchError | None = None
        for url in discovery_urls(self.link.issuer):
            answer = yield HttpGet(url, {"Accept": "application/json"}, MAX_DISCOVERY_BYTES)
            try:
                accept_status(answer.status, have_cached=False)
            except FetchError as err:
                failure = err
                continue
            return read_discovery(answer.body, issuer=self.link.issuer).jwks_uri
        raise FetchError("no discovery document") from failure


def refreshed(link_log: LinkLog, outcome: float | BaseException, *, quiet: bool = False) -> bool:
    """Log the outcome of one key refresh; True when it succeeded.

    The outcome is its delay until the next, or what it failed with. The keys trusted so
    far stay after a failure (last known good); a failure is not logged when ``quiet``
    (the driver is stopping).
    """
    if not isinstance(outcome, BaseException):
        link_log.up()
        return True
    if isinstance(outcome, FetchError | KeyMaterialError):
        link_log.bad_keys(outcome)
    elif not quiet:
        link_log.down(outcome)
    return False


def introspection_request(
    link: IntrospectionLink, token: str
) -> tuple[dict[str, str], dict[str, str]]:
    """The headers and form of an introspection request for ``token``."""
    headers = {
        "Authorization": basic_credentials(link.client_id, link.client_secret),
        "Accept": "application/json",
    }
    return headers, introspection_form(token)


def accept_introspection(
    local: LocalVerification, link: IntrospectionLink, token: str, answer: HttpAnswer
) -> Principal:
    """The caller an introspection answer names, cached as long as it may be trusted.

    Raises:
        VerifierUnavailable: The endpoint did not answer 200 with a JSON object (this
            service's credentials refused, say): fail closed.
        AuthError: The token is not active, or not for this audience or issuer.
    """
    try:
        accept_status(answer.status, have_cached=False)
        document = read_json(answer.body)
    except FetchError as err:
        log.warning(
            "introspection endpoint answered unusably: refusing",
            extra={"target": link.url, "error": err.message},
        )
        raise VerifierUnavailable() from err
    now = local.clock()
    principal = introspected(
        document, audience=local.audience, issuer=link.issuer, now=now, leeway=local.leeway
    )
    until = trusted_until(principal, now=now, max_cache_seconds=link.max_cache_seconds)
    return local.remember(token, principal, until=until)
