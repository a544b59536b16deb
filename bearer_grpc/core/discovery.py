"""Where an issuer's keys are, and what a fetch of them may accept: rules without I/O.

- :func:`check_url`: the only URLs fetched are ``https://`` (``http://`` only on a
  loopback host), without credentials or fragment. They come from configuration or
  from the configured issuer's own discovery document, never from a token.
- :func:`discovery_urls`: OpenID Connect discovery (``{issuer}/.well-known/
  openid-configuration``), then RFC 8414 (``/.well-known/oauth-authorization-server``
  inserted before the issuer's path).
- :func:`read_discovery`: the document's ``issuer`` must equal the configured one
  exactly (the mix-up defence of RFC 8414 §3.3 and OpenID Connect Discovery §4.3).
- :func:`accept_status`, :class:`Body`: an answer counts only with status exactly 200
  (or 304 to a conditional GET with a body kept), and no larger than its cap.
- :func:`refresh_after`: when to fetch the keys again, from ``Cache-Control``, within
  bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from bearer_grpc.core.errors import FetchError, TokenInvalid
from bearer_grpc.core.hosts import is_loopback
from bearer_grpc.core.jws import json_object

MAX_DISCOVERY_BYTES: Final = 64 * 1024
"""Largest discovery document read."""
MAX_JWKS_BYTES: Final = 256 * 1024
"""Largest JWKS read (Entra's, with certificate chains, is about 20 KiB)."""
MAX_INTROSPECTION_BYTES: Final = 16 * 1024
"""Largest introspection answer read."""
OIDC_PATH: Final = "/.well-known/openid-configuration"
RFC8414_PATH: Final = "/.well-known/oauth-authorization-server"


def check_url(url: object, *, what: str = "URL") -> str:
    """``url`` itself, if it may be fetched.

    Raises:
        ValueError: Not ``https://`` (nor ``http://`` on a loopback host), no host, or
            credentials, a query-less fragment or other parts that make no fetch target.
    """
    if not isinstance(url, str):
        raise ValueError(f"{what} must be a string")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError as err:
        raise ValueError(f"{what} is not a URL") from err
    if not host or parts.username is not None or parts.password is not None:
        raise ValueError(f"{what} needs a host and no credentials")
    if parts.fragment or "#" in url:
        raise ValueError(f"{what} must not have a fragment")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host)):
        return url
    raise ValueError(f"{what} must be https:// (http:// only on loopback)")


def check_issuer(issuer: str) -> str:
    """An issuer URL that discovery can start from (RFC 8414 §2: no query, no fragment).

    Raises:
        ValueError: See :func:`check_url`; or it has a query.
    """
    check_url(issuer, what="issuer")
    if urlsplit(issuer).query or "?" in issuer:
        raise ValueError("issuer must not have a query")
    return issuer


def discovery_urls(issuer: str) -> tuple[str, str]:
    """Where an issuer's metadata may be: OpenID Connect first, then RFC 8414.

    OpenID Connect Discovery §4 appends its path to the issuer; RFC 8414 §3 inserts its
    own between the host and the issuer's path (``https://h/realms/x`` →
    ``https://h/.well-known/oauth-authorization-server/realms/x``).
    """
    check_issuer(issuer)
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    origin = f"{parts.scheme}://{parts.netloc}"
    return f"{issuer.rstrip('/')}{OIDC_PATH}", f"{origin}{RFC8414_PATH}{path}"


@dataclass(frozen=True)
class Discovery:
    """What a verifier uses of an issuer's metadata.

    Attributes:
        issuer: The ``issuer`` (equal to the configured one).
        jwks_uri: Where its keys are.
    """

    issuer: str
    jwks_uri: str


def read_discovery(body: bytes, *, issuer: str) -> Discovery:
    """The metadata in ``body``, for the configured ``issuer``.

    Raises:
        FetchError: Not a strict JSON object, an ``issuer`` other than the configured
            one, or no usable ``jwks_uri``.
    """
    document = read_json(body)
    if document.get("issuer") != issuer:
        raise FetchError("discovery document names another issuer")
    jwks_uri = document.get("jwks_uri")
    try:
        return Discovery(issuer, check_url(jwks_uri, what="jwks_uri"))
    except ValueError as err:
        raise FetchError("discovery document has no usable jwks_uri") from err


def read_json(body: bytes) -> dict[str, object]:
    """A strict JSON object (duplicate members refused).

    Raises:
        FetchError: Anything else.
    """
    try:
        return json_object(body)
    except TokenInvalid as err:
        raise FetchError("answer is not a JSON object") from err


def accept_status(status: int, *, have_cached: bool) -> bool:
    """Whether an answer carries a new body (True) or confirms the cached one (False).

    Raises:
        FetchError: Any status but 200, or 304 with no body kept from before (a
            redirect is never followed).
    """
    if status == 200:
        return True
    if status == 304 and have_cached:
        return False
    raise FetchError(f"status {status}")


class Body:
    """The bytes of an answer, refused as soon as they pass ``limit`` or take too long.

    Too long counts for the whole answer: a read timeout bounds each silence, not a slow
    drip of bytes.

    Args:
        limit: Most bytes accepted.
        declared: The ``Content-Length`` the answer announced, if any.
        clock: Monotonic time.
        seconds: Longest time from now until the last byte.

    Raises:
        FetchError: The announced length is over the limit.
    """

    def __init__(
        self, limit: int, declared: str | None, *, clock: Callable[[], float], seconds: float
    ) -> None:
        self.limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self._clock = clock
        self._deadline = clock() + seconds
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise FetchError("answer too large")

    def add(self, chunk: bytes) -> None:
        """Take the next chunk.

        Raises:
            FetchError: The answer is over the limit, or late.
        """
        self._size += len(chunk)
        if self._size > self.limit:
            raise FetchError("answer too large")
        if self._clock() > self._deadline:
            raise FetchError("answer too slow")
        self._chunks.append(chunk)

    def bytes(self) -> bytes:
        """Everything taken."""
        return b"".join(self._chunks)


@dataclass(frozen=True)
class Refresh:
    """Bounds of the key refresh interval, seconds.

    Attributes:
        default: Used when the answer says nothing about caching.
        minimum: Never sooner (``no-cache`` and small ``max-age`` values come here:
            Keycloak and Hydra send ``no-cache``).
        maximum: Never later (so a removed key leaves within this time).
    """

    default: float = 300.0
    minimum: float = 60.0
    maximum: float = 3600.0

    def __post_init__(self) -> None:
        if not 0 < self.minimum <= self.default <= self.maximum:
            raise ValueError("refresh bounds must satisfy 0 < minimum <= default <= maximum")


def max_age(cache_control: str | None) -> float | None:
    """The freshness ``Cache-Control`` gives (RFC 9111 §5.2.2), or None if it says none.

    ``no-cache`` and ``no-store`` give 0; ``max-age=N`` gives N (the smallest, if several).
    """
    if not cache_control:
        return None
    ages: list[float] = []
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-cache", "no-store"):
            return 0.0
        value = value.strip().strip('"')
        if name == "max-age" and value.isdigit():
            ages.append(float(value))
    return min(ages) if ages else None


def refresh_after(cache_control: str | None, bounds: Refresh) -> float:
    """Seconds until the keys are fetched again, from the answer's ``Cache-Control``."""
    age = max_age(cache_control)
    wanted = bounds.default if age is None else age
    return min(max(wanted, bounds.minimum), bounds.maximum)
