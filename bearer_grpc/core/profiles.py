"""Token profiles: what an access token of one issuer looks like, and how to read it.

Issuers shape their JWT access tokens differently: the header ``typ`` (``at+jwt`` after
RFC 9068, ``JWT`` at most identity providers, absent at some), whether ``jti`` and
``iat`` are present, where the granted scopes are (``scope``, ``scp``, ``roles``,
``permissions``, a nested claim) and which claim names the client. A
:class:`TokenProfile` says all of that for one issuer; :class:`~.tokens.TokenVerifier`
applies it.

A profile only relaxes what differs between issuers. These rules hold for every profile:
the algorithm comes from the trusted key, never the token; keys are asymmetric; ``exp``,
``iss``, ``aud`` and ``sub`` are required; the issuer and the audience match exactly;
duplicate JSON members and the forbidden headers (``crit``, ``jku``, ``x5u``, ``jwk``, ...)
are refused; an ID token is refused unless the profile opts in (:attr:`allow_id_tokens`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from bearer_grpc.core.scopes import parse_scope_claim

RFC9068_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
"""The RFC 9068 media types of a JWT access token (compared case-insensitively)."""
ALWAYS_REQUIRED: Final = frozenset({"exp", "iss", "aud", "sub"})
"""Claims no profile can make optional."""
OPTIONAL_CLAIMS: Final = frozenset({"iat", "jti"})
"""Claims a profile may leave out of :attr:`TokenProfile.required_claims`."""
ID_TOKEN_CLAIMS: Final = frozenset({"nonce", "at_hash", "c_hash"})
"""Claims only OpenID Connect ID tokens carry."""


@dataclass(frozen=True)
class TokenProfile:
    """What an issuer's access tokens look like (one profile per issuer).

    The default is :meth:`rfc9068`, bearer_grpc's own tokens. The presets follow their
    vendors' documentation (cited on each); change a field of a preset with
    ``dataclasses.replace`` or the preset's keyword arguments, e.g.
    ``TokenProfile.keycloak(scope_claims=("scope", "realm_access.roles"))``.

    When ``jti`` is not required and a token has none, the token cannot be revoked by
    id: only its expiry ends it (and, for opaque tokens checked by
    :meth:`bearer_grpc.Verifier.introspection`, the issuer's own revocation, within the
    cache time). Revocations pushed by a TokenService name token ids.

    Attributes:
        name: A label for ``repr`` and logs.
        types: Accepted header ``typ`` values, compared case-insensitively; ``None`` in
            the set accepts a token without ``typ``.
        required_claims: Claims that must be present. ``exp``, ``iss``, ``aud`` and
            ``sub`` always are; ``iat`` and ``jti`` may be left out.
        scope_claims: Where :attr:`Principal.scopes` come from, read in order and
            joined: a claim name or a dotted path into nested objects
            (``realm_access.roles``). A string value is split on spaces (RFC 6749
            ``scope``), an array must hold strings; ``scope`` itself is always a string
            (RFC 8693 §4.2). Absent claims give no scopes.
        client_claims: Claims naming the client, the first present one wins
            (``client_id``, ``azp``, ``appid``, ``cid``).
        denied_audiences: Audiences a verifier with this profile may never be
            configured for (Keycloak's ``account`` is in every token of a realm).
        allow_id_tokens: Accept tokens that look like OpenID Connect ID tokens (a
            ``nonce``, ``at_hash`` or ``c_hash`` claim, or an audience that is the
            client the token was issued to). Off by default: an ID token proves a
            login to a client, it does not grant access to an API. Turn it on only
            for a service whose callers present ID tokens made for it on purpose
            (Google's service-to-service ID tokens, say).
    """

    name: str = "rfc9068"
    types: frozenset[str | None] = RFC9068_TYPES
    required_claims: frozenset[str] = frozenset({"exp", "iat", "iss", "aud", "sub", "jti"})
    scope_claims: tuple[str, ...] = ("scope",)
    client_claims: tuple[str, ...] = ("client_id",)
    denied_audiences: frozenset[str] = frozenset()
    allow_id_tokens: bool = False

    def __post_init__(self) -> None:
        lowered = frozenset(t.lower() if isinstance(t, str) else t for t in self.types)
        object.__setattr__(self, "types", lowered)
        object.__setattr__(self, "required_claims", frozenset(self.required_claims))
        object.__setattr__(self, "denied_audiences", frozenset(self.denied_audiences))
        if not self.types:
            raise ValueError("a profile accepts at least one typ")
        if not self.required_claims >= ALWAYS_REQUIRED:
            raise ValueError("exp, iss, aud and sub are always required")
        if not self.required_claims <= ALWAYS_REQUIRED | OPTIONAL_CLAIMS:
            raise ValueError("only exp, iat, iss, aud, sub and jti can be required")
        for path in (*self.scope_claims, *self.client_claims):
            if not isinstance(path, str) or not path or "" in path.split("."):
                raise ValueError("claim names must be non-empty (dotted paths of names)")

    @classmethod
    def rfc9068(cls, **changes: Any) -> TokenProfile:
        """RFC 9068 access tokens, as bearer_grpc's TokenService issues them (the default).

        ``typ`` ``at+jwt`` (or ``application/at+jwt``); ``exp, iat, iss, aud, sub, jti``
        required; scopes from the ``scope`` string; the client from ``client_id``.
        Source: RFC 9068 §2.1-2.2 (header and claims), §4 (validation).
        """
        return dataclasses.replace(cls(), **changes)

    @classmethod
    def keycloak(cls, **changes: Any) -> TokenProfile:
        """Keycloak access tokens.

        ``typ`` ``JWT`` (Keycloak's default) or ``at+jwt`` (a per-client option since
        Keycloak 26.2); ``jti`` and ``iat`` required (Keycloak sets both); scopes from
        the ``scope`` string (realm roles are in ``realm_access.roles``: add that path
        to ``scope_claims`` to use them as scopes); the client from ``client_id`` or
        else ``azp``. The audience ``account`` is refused as this service's audience:
        Keycloak adds it to tokens for its account console, so every token of the realm
        may carry it (give the API its own audience with an audience mapper).

        Sources: Keycloak Server Administration Guide, "Audience support" and "Client
        scopes"; Keycloak Securing Applications guide, "Token exchange" and the access
        token claims (``azp``, ``realm_access``, ``resource_access``); keycloak/keycloak
        issue #34146 and pull request #37573 (``at+jwt`` as a client option); issue
        #35262 (the ``account`` audience).
        """
        preset = cls(
            name="keycloak",
            types=frozenset({"jwt", *RFC9068_TYPES}),
            scope_claims=("scope",),
            client_claims=("client_id", "azp"),
            denied_audiences=frozenset({"account"}),
        )
        return dataclasses.replace(preset, **changes)

    @classmethod
    def okta(cls, **changes: Any) -> TokenProfile:
        """Okta custom authorization server access tokens.

        Header ``typ`` absent or ``JWT`` (Okta's documented header holds only ``alg``
        and ``kid``); ``jti`` (``AT.…``) and ``iat`` required; scopes from ``scp``, an
        array; the client from ``cid``.

        Sources: Okta Developer, "OpenID Connect & OAuth 2.0 API" reference, "Access
        token" (header, reserved claims ``cid``, ``uid``, ``scp``); Okta Developer,
        "Validate access tokens".
        """
        preset = cls(
            name="okta",
            types=frozenset({None, "jwt", *RFC9068_TYPES}),
            scope_claims=("scp",),
            client_claims=("cid",),
        )
        return dataclasses.replace(preset, **changes)

    @classmethod
    def entra(cls, **changes: Any) -> TokenProfile:
        """Microsoft Entra ID (Azure AD) access tokens, v1.0 and v2.0.

        ``typ`` ``JWT``; no ``jti`` (Entra has ``uti``, which is not a revocation id), so
        such tokens end only at their expiry; ``iat`` required; scopes from ``scp``, a
        space-separated string (delegated permissions), joined with ``roles``, an array
        (application permissions: every client-credentials token); the client from
        ``azp`` (v2.0) or ``appid`` (v1.0). Configure the issuer of the token version
        your API receives (``https://login.microsoftonline.com/{tenant}/v2.0`` or
        ``https://sts.windows.net/{tenant}/``) and its audience (the API's client id,
        or its App ID URI for v1.0 tokens).

        Sources: Microsoft identity platform documentation, "Access token claims
        reference" (``scp``, ``roles``, ``azp``, ``appid``, ``uti``, ``ver``) and
        "Access tokens in the Microsoft identity platform" (validation, token versions).
        """
        preset = cls(
            name="entra",
            types=frozenset({"jwt"}),
            required_claims=frozenset({"exp", "iat", "iss", "aud", "sub"}),
            scope_claims=("scp", "roles"),
            client_claims=("azp", "appid"),
        )
        return dataclasses.replace(preset, **changes)

    @classmethod
    def auth0(cls, **changes: Any) -> TokenProfile:
        """Auth0 access tokens for an API, in either of Auth0's token profiles.

        ``typ`` ``JWT`` (the "Auth0" profile) or ``at+jwt`` (the "RFC 9068" profile);
        ``jti`` optional (the Auth0 profile has none); ``iat`` required; scopes from the
        ``scope`` string joined with ``permissions``, an array (with RBAC's "Add
        Permissions in the Access Token"); the client from ``client_id`` (RFC 9068
        profile) or else ``azp``. An ``aud`` array (the API and ``/userinfo``, when
        ``openid`` was requested) passes when it names this API.

        Sources: Auth0 Docs, "Access Token Profiles" (the two profiles' claims), "JSON
        Web Token Claims", and "Enable Role-Based Access Control for APIs" (the
        ``permissions`` claim).
        """
        preset = cls(
            name="auth0",
            types=frozenset({"jwt", *RFC9068_TYPES}),
            required_claims=frozenset({"exp", "iat", "iss", "aud", "sub"}),
            scope_claims=("scope", "permissions"),
            client_claims=("client_id", "azp"),
        )
        return dataclasses.replace(preset, **changes)

    def accepts_type(self, header: Mapping[str, Any]) -> bool:
        """Whether the ``typ`` of a JWS header (or its absence) is one this profile accepts."""
        if "typ" not in header:
            return None in self.types
        typ = header["typ"]
        return isinstance(typ, str) and typ.lower() in self.types

    def check_audience(self, audience: str) -> str:
        """The audience a verifier is configured for, unless this profile denies it.

        Raises:
            ValueError: The audience is empty or denied.
        """
        if not isinstance(audience, str) or not audience:
            raise ValueError("an audience is required")
        if audience in self.denied_audiences:
            raise ValueError(f"the {self.name} profile refuses the audience {audience!r}")
        return audience

    def scopes(self, claims: Mapping[str, Any]) -> frozenset[str]:
        """The scopes ``claims`` grant, read from :attr:`scope_claims`.

        Raises:
            ValueError: A scope claim is present but neither a string nor an array of
                strings (``scope``: not a string).
        """
        found: set[str] = set()
        for path in self.scope_claims:
            value = claim_at(claims, path)
            if value is None:
                continue
            if isinstance(value, list) and path != "scope":
                if not all(isinstance(item, str) and item for item in value):
                    raise ValueError("scope array holds a non-string")
                found.update(value)
            else:
                found |= parse_scope_claim(value)
        return frozenset(found)

    def client_id(self, claims: Mapping[str, Any]) -> str:
        """The client the token was issued to ("" when no client claim is present).

        Raises:
            ValueError: The first client claim present is not a string.
        """
        for path in self.client_claims:
            value = claim_at(claims, path)
            if value is not None:
                if not isinstance(value, str):
                    raise ValueError("client claim is not a string")
                return value
        return ""

    def is_id_token(self, claims: Mapping[str, Any], audiences: Iterable[str]) -> bool:
        """Whether ``claims`` look like an ID token this profile refuses.

        An ID token carries ``nonce``, ``at_hash`` or ``c_hash``, or is addressed to the
        client it was issued to (its ``aud`` names its own ``azp``); an access token for
        an API names the API.
        """
        if self.allow_id_tokens:
            return False
        if not ID_TOKEN_CLAIMS.isdisjoint(claims):
            return True
        azp = claims.get("azp")
        return isinstance(azp, str) and azp in audiences


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of nested objects (None when absent).

    A name holding a dot itself is found first as it is (``"a.b"`` before ``a`` → ``b``).
    """
    if path in claims:
        return claims[path]
    value: Any = claims
    for name in path.split("."):
        if not isinstance(value, Mapping) or name not in value:
            return None
        value = value[name]
    return value


RFC9068: Final = TokenProfile()
"""The default profile (:meth:`TokenProfile.rfc9068`)."""
