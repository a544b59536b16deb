"""The issuer URL, the endpoints under it, and the discovery document (RFC 8414).

Pure. The same document is served at RFC 8414's
``/.well-known/oauth-authorization-server`` (inserted before the issuer's path) and at
OpenID Connect Discovery's ``/.well-known/openid-configuration`` (appended to it); with
an issuer without a path, as recommended, both are at the root.

**Fields an access-token-only server cannot fill truthfully.** This service has no
authorization endpoint and issues no ID tokens:

- ``authorization_endpoint`` and ``response_types_supported`` are omitted: there is no
  response type to list, and RFC 8414 §2 has empty lists left out. (Strict validators of
  OpenID Provider metadata, such as authlib's, refuse the document for that; clients and
  verifiers that read it for ``jwks_uri`` and endpoints do not.)
- ``id_token_signing_alg_values_supported`` lists the algorithms of the published keys:
  verifiers such as go-oidc restrict the algorithms they accept to it (assuming RS256
  when it is absent), and they apply it to our access tokens.
- ``subject_types_supported`` is ``["public"]``: a subject is the same for every client.
- ``scopes_supported`` lists the scopes this service itself defines; the scopes of
  clients and users are the deployment's, and are not advertised (RFC 8414 allows
  leaving values out).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from bearer_grpc.core.hosts import is_loopback
from bearer_grpc.service.settings import ADMIN_SCOPE, INTROSPECT_SCOPE

OAUTH_WELL_KNOWN: Final = "/.well-known/oauth-authorization-server"
OIDC_WELL_KNOWN: Final = "/.well-known/openid-configuration"
GRANT_TYPES: Final = ("client_credentials", "password", "refresh_token")
CLIENT_AUTH_METHODS: Final = ("client_secret_basic", "client_secret_post")
TOKEN_AUTH_METHODS: Final = (*CLIENT_AUTH_METHODS, "none")
"""``none``: the public login client of the password and refresh-token grants."""
SERVICE_SCOPES: Final = (ADMIN_SCOPE, INTROSPECT_SCOPE)


def check_issuer(issuer: str) -> str:
    """Check that ``issuer`` can name an HTTP face.

    It must be an ``https://`` URL, or ``http://`` on a loopback host (development),
    without query, fragment, user info or trailing slash.

    Returns:
        ``issuer`` unchanged.

    Raises:
        ValueError: It is not such a URL.
    """
    try:
        url = urllib.parse.urlsplit(issuer)
        url.port  # noqa: B018 (raises for a bad port)
    except ValueError as err:
        raise ValueError(f"--issuer is not a URL: {issuer!r}") from err
    if url.scheme not in ("https", "http") or not url.hostname:
        raise ValueError("--issuer must be an https:// URL to serve HTTP (see --http-listen)")
    if url.scheme == "http" and not is_loopback(url.hostname):
        raise ValueError("--issuer may be http:// only on a loopback host; use https://")
    if url.query or url.fragment or "?" in issuer or "#" in issuer or url.username:
        raise ValueError("--issuer must have no query, fragment or user info")
    if url.path.endswith("/"):
        raise ValueError("--issuer must not end with a slash")
    return issuer


@dataclass(frozen=True)
class Endpoints:
    """Where everything is, from the issuer URL.

    Attributes:
        issuer: The issuer URL.
    """

    issuer: str

    @property
    def _base(self) -> str:
        return urllib.parse.urlsplit(self.issuer).path

    def path(self, name: str) -> str:
        """The local path of endpoint ``name`` (``token``, ``jwks``...)."""
        return f"{self._base}/{name}"

    def url(self, name: str) -> str:
        """The absolute URL of endpoint ``name``."""
        return f"{self.issuer}/{name}"

    @property
    def discovery_paths(self) -> tuple[str, str]:
        """The RFC 8414 path (inserted) and the OpenID Connect one (appended)."""
        return OAUTH_WELL_KNOWN + self._base, self._base + OIDC_WELL_KNOWN


def discovery_document(endpoints: Endpoints, algorithms: Iterable[str]) -> dict[str, Any]:
    """The authorization server metadata (see the module docstring for each choice).

    Args:
        endpoints: The issuer and its endpoints.
        algorithms: Algorithms of the published signing keys.
    """
    return {
        "issuer": endpoints.issuer,
        "jwks_uri": endpoints.url("jwks"),
        "token_endpoint": endpoints.url("token"),
        "revocation_endpoint": endpoints.url("revoke"),
        "introspection_endpoint": endpoints.url("introspect"),
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": list(TOKEN_AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "scopes_supported": list(SERVICE_SCOPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": sorted(set(algorithms)),
    }
