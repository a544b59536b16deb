"""Tokens shaped like each preset's vendor, signed by a test key whose JWKS a local
server publishes: accepted with the preset, refused with the default profile, and the
scopes mapped as each preset documents."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

import bearer_grpc
from bearer_grpc import TokenProfile
from tests.issuers._support import LocalServer, Route, VendorKey

NOW = int(time.time())


def keycloak() -> tuple[str, str, dict[str, Any], str | None, frozenset[str]]:
    issuer = "https://sso.example/realms/shop"
    claims = {
        "exp": NOW + 300, "iat": NOW, "jti": "0f1c-keycloak", "iss": issuer,
        "aud": ["orders", "account"], "sub": "9b8c2c4e-service-account", "typ": "Bearer",
        "azp": "shop", "client_id": "shop", "scope": "profile orders.read",
        "realm_access": {"roles": ["offline_access", "orders-admin"]},
    }  # fmt: skip
    return issuer, "orders", claims, "JWT", frozenset({"profile", "orders.read"})


def entra() -> tuple[str, str, dict[str, Any], str | None, frozenset[str]]:
    issuer = "https://login.microsoftonline.com/72f988bf-tenant/v2.0"
    audience = "6e74172b-api-client-id"
    claims = {
        "aud": audience, "iss": issuer, "iat": NOW, "nbf": NOW, "exp": NOW + 300,
        "aio": "E2Z", "azp": "f3c4-caller", "azpacr": "1", "oid": "a1b2", "rh": "0.AR",
        "roles": ["Orders.Read", "Orders.Write"], "sub": "a1b2", "tid": "72f988bf-tenant",
        "uti": "Ab3C", "ver": "2.0",
    }  # fmt: skip
    return issuer, audience, claims, "JWT", frozenset({"Orders.Read", "Orders.Write"})


def okta() -> tuple[str, str, dict[str, Any], str | None, frozenset[str]]:
    issuer = "https://dev-1.okta.example/oauth2/default"
    claims = {
        "ver": 1, "jti": "AT.u1S1", "iss": issuer, "aud": "api://default", "iat": NOW,
        "exp": NOW + 300, "cid": "0oa1client", "scp": ["orders.read", "orders.write"],
        "sub": "0oa1client",
    }  # fmt: skip
    return issuer, "api://default", claims, None, frozenset({"orders.read", "orders.write"})


def auth0() -> tuple[str, str, dict[str, Any], str | None, frozenset[str]]:
    issuer = "https://shop.eu.auth0.example/"
    audience = "https://orders.example"
    claims = {
        "iss": issuer, "sub": "Xk2client@clients", "aud": [audience, f"{issuer}userinfo"],
        "iat": NOW, "exp": NOW + 300, "azp": "Xk2client", "gty": "client-credentials",
        "scope": "orders.read", "permissions": ["orders:write"],
    }  # fmt: skip
    return issuer, audience, claims, "JWT", frozenset({"orders.read", "orders:write"})


PRESETS = {
    "keycloak": (TokenProfile.keycloak, keycloak),
    "entra": (TokenProfile.entra, entra),
    "okta": (TokenProfile.okta, okta),
    "auth0": (TokenProfile.auth0, auth0),
}
CLIENTS = {"keycloak": "shop", "entra": "f3c4-caller", "okta": "0oa1client", "auth0": "Xk2client"}


@pytest.fixture
def published(server: LocalServer) -> Iterator[tuple[LocalServer, VendorKey]]:
    """A vendor key (without ``alg``, as Entra publishes) served at /keys."""
    key = VendorKey(with_alg=False)
    server.routes["/keys"] = Route(key.jwks)
    yield server, key


def _verifier(server: LocalServer, issuer: str, audience: str, **kwargs: Any) -> Any:
    return bearer_grpc.Verifier.from_jwks_url(
        f"{server.url}/keys", issuer=issuer, audience=audience, **kwargs
    )


@pytest.mark.parametrize("name", PRESETS)
def test_vendor_token_accepted_with_its_preset(
    published: tuple[LocalServer, VendorKey], name: str
) -> None:
    server, key = published
    preset, shape = PRESETS[name]
    issuer, audience, claims, typ, scopes = shape()
    token = key.sign(claims, typ=typ)
    with _verifier(server, issuer, audience, profile=preset()) as verifier:
        principal = verifier.verify(token)
    assert principal.scopes == scopes
    assert (principal.issuer, principal.subject) == (issuer, claims["sub"])
    assert principal.client_id == CLIENTS[name]
    assert principal.token_id == claims.get("jti", "")


@pytest.mark.parametrize("name", PRESETS)
def test_vendor_token_refused_with_the_default_profile(
    published: tuple[LocalServer, VendorKey], name: str
) -> None:
    server, key = published
    _, shape = PRESETS[name]
    issuer, audience, claims, typ, _ = shape()
    verifier = _verifier(server, issuer, audience)
    with verifier, pytest.raises(bearer_grpc.TokenInvalid):
        verifier.verify(key.sign(claims, typ=typ))


def test_keycloak_realm_roles_as_scopes(published: tuple[LocalServer, VendorKey]) -> None:
    server, key = published
    issuer, audience, claims, typ, _ = keycloak()
    profile = TokenProfile.keycloak(scope_claims=("scope", "realm_access.roles"))
    with _verifier(server, issuer, audience, profile=profile) as verifier:
        scopes = verifier.verify(key.sign(claims, typ=typ)).scopes
    assert scopes == {"profile", "orders.read", "offline_access", "orders-admin"}


def test_keycloak_account_audience_is_refused_at_construction(
    published: tuple[LocalServer, VendorKey],
) -> None:
    server, _ = published
    with pytest.raises(ValueError, match="account"):
        _verifier(server, keycloak()[0], "account", profile=TokenProfile.keycloak())


def test_entra_token_without_jti_cannot_be_revoked_by_id(
    published: tuple[LocalServer, VendorKey],
) -> None:
    server, key = published
    issuer, audience, claims, typ, _ = entra()
    with _verifier(server, issuer, audience, profile=TokenProfile.entra()) as verifier:
        assert verifier.verify(key.sign(claims, typ=typ)).token_id == ""


def test_a_preset_keeps_the_rules_no_profile_relaxes(
    published: tuple[LocalServer, VendorKey],
) -> None:
    server, key = published
    issuer, audience, claims, typ, _ = okta()
    with _verifier(server, issuer, audience, profile=TokenProfile.okta()) as verifier:
        for broken in (
            {**claims, "iss": issuer + "/"},  # issuer exact
            {**claims, "aud": "api://defaults"},  # audience exact
            {k: v for k, v in claims.items() if k != "exp"},  # exp required
            {k: v for k, v in claims.items() if k != "sub"},  # sub required
        ):
            with pytest.raises(bearer_grpc.TokenInvalid):
                verifier.verify(key.sign(broken, typ=typ))
        with pytest.raises(bearer_grpc.TokenInvalid):  # forbidden header
            verifier.verify(key.sign(claims, typ=typ, jku=f"{server.url}/evil"))
    assert "/evil" not in server.paths()
