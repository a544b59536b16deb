"""TokenProfile: presets, the rules no profile relaxes, scope and client claims."""

from __future__ import annotations

import dataclasses

import pytest

from bearer_grpc.core.profiles import RFC9068, TokenProfile, claim_at

PRESETS = [TokenProfile.rfc9068, TokenProfile.keycloak, TokenProfile.okta, TokenProfile.entra,
           TokenProfile.auth0]  # fmt: skip


def test_the_default_is_rfc9068() -> None:
    assert TokenProfile() == RFC9068 == TokenProfile.rfc9068()
    assert RFC9068.required_claims == {"exp", "iat", "iss", "aud", "sub", "jti"}
    assert RFC9068.accepts_type({"typ": "AT+JWT"}) and RFC9068.accepts_type(
        {"typ": "application/at+jwt"}
    )
    assert not RFC9068.accepts_type({}) and not RFC9068.accepts_type({"typ": "JWT"})
    assert not RFC9068.accepts_type({"typ": None})


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.__name__)
def test_every_preset_keeps_the_fixed_rules(preset: object) -> None:
    profile = preset()  # type: ignore[operator]
    assert {"exp", "iss", "aud", "sub"} <= profile.required_claims
    assert not profile.allow_id_tokens
    assert profile.__class__.__name__ == "TokenProfile"


@pytest.mark.parametrize(
    "changes",
    [
        {"required_claims": {"iss", "aud", "sub"}},
        {"required_claims": {"exp", "iss", "aud"}},
        {"required_claims": {"exp", "iss", "aud", "sub", "nonce"}},
        {"types": frozenset()},
        {"scope_claims": ("a..b",)},
        {"client_claims": ("",)},
    ],
)
def test_what_no_profile_may_relax(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TokenProfile(**changes)  # type: ignore[arg-type]


def test_okta_accepts_an_absent_typ_but_not_a_null_one() -> None:
    okta = TokenProfile.okta()
    assert okta.accepts_type({}) and okta.accepts_type({"typ": "JWT"})
    assert not okta.accepts_type({"typ": None}) and not okta.accepts_type({"typ": "JOSE"})


def test_scopes_from_strings_arrays_and_paths() -> None:
    entra = TokenProfile.entra()
    assert entra.scopes({"scp": "a b", "roles": ["C"]}) == {"a", "b", "C"}
    keycloak = TokenProfile.keycloak(scope_claims=("scope", "realm_access.roles"))
    assert keycloak.scopes({"scope": "x", "realm_access": {"roles": ["r"]}}) == {"x", "r"}
    assert keycloak.scopes({}) == frozenset()
    for bad in ({"scp": [1]}, {"scp": {"a": 1}}, {"scp": ["a", ""]}):
        with pytest.raises(ValueError):
            entra.scopes(bad)
    with pytest.raises(ValueError):  # scope itself is always a string
        RFC9068.scopes({"scope": ["a"]})


def test_client_claim_first_present_wins() -> None:
    assert TokenProfile.entra().client_id({"appid": "v1", "azp": "v2"}) == "v2"
    assert TokenProfile.entra().client_id({"appid": "v1"}) == "v1"
    assert TokenProfile.okta().client_id({}) == ""
    with pytest.raises(ValueError):
        TokenProfile.okta().client_id({"cid": 5})


def test_id_tokens() -> None:
    profile = TokenProfile.keycloak()
    assert profile.is_id_token({"nonce": "n"}, ["orders"])
    assert profile.is_id_token({"at_hash": "h"}, ["orders"])
    assert profile.is_id_token({"azp": "orders"}, ["orders"])
    assert not profile.is_id_token({"azp": "shop"}, ["orders", "account"])
    assert not dataclasses.replace(profile, allow_id_tokens=True).is_id_token({"nonce": "n"}, [])


def test_denied_audience() -> None:
    with pytest.raises(ValueError):
        TokenProfile.keycloak().check_audience("account")
    assert TokenProfile.keycloak().check_audience("orders") == "orders"


def test_claim_at() -> None:
    assert claim_at({"a": {"b": {"c": 1}}}, "a.b.c") == 1
    assert claim_at({"a.b": 2, "a": {"b": 3}}, "a.b") == 2
    assert claim_at({"a": [1]}, "a.b") is None
