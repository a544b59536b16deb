"""The pure rules of Envoy's Check (bearer_grpc.core.ext_authz), without Envoy or gRPC."""

from __future__ import annotations

import pytest

from bearer_grpc import Policy
from bearer_grpc.core.errors import (
    Forbidden,
    InsufficientScope,
    TokenExpired,
    TokenMalformed,
    TokenMissing,
)
from bearer_grpc.core.ext_authz import (
    Allow,
    Deny,
    PendingCheck,
    decide,
    header_value,
    headers_of,
    is_grpc,
    method_of,
)
from bearer_grpc.core.tokens import Principal
from bearer_grpc.testing import TestIssuer

POLICY = Policy(
    public=["/pub.Svc/*"],
    scopes={"/shop.v1.Orders/*": ["orders.read"], "/shop.v1.Orders/Create": ["orders.write"]},
)
STRICT = Policy(scopes={"/shop.v1.Orders/*": ["orders.read"]}, strict=True)


@pytest.fixture
def issuer() -> TestIssuer:
    return TestIssuer()


def headers(value: str | None = None, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    found = [(":path", "/x"), ("content-type", "application/grpc"), *extra]
    return found + ([("authorization", value)] if value is not None else [])


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/shop.v1.Orders/Get", "/shop.v1.Orders/Get"),
        ("/orders/list?page=2&q=a%20b", "/orders/list"),
        ("/orders/list#top", "/orders/list"),
        ("/", "/"),
        ("/api/v1/orders/", "/api/v1/orders/"),
        ("", None),
        ("orders", None),
        ("//shop.v1.Orders/Get", None),
        ("/shop.v1.Orders//Get", None),
        ("/pub.Svc/../shop.v1.Orders/Create", None),
        ("/pub.Svc/./X", None),
        ("/pub.Svc/..", None),
        ("/pub.Svc/%2e%2e/x", None),
        ("/pub.Svc/a%2Fb", None),
        ("/pub.Svc\\..\\x", None),
        ("/pub.Svc/\u00e9", None),
        ("/pub.Svc/a\nb", None),
    ],
)
def test_the_method_is_the_normal_path_without_its_query(path: str, method: str | None) -> None:
    assert method_of(path) == method


def test_grpc_is_told_by_content_type() -> None:
    assert is_grpc("application/grpc")
    assert is_grpc("application/grpc+proto")
    assert not is_grpc("application/json")
    assert not is_grpc("")


def test_a_public_method_is_allowed_and_loses_every_identity_header() -> None:
    spoofed = (("x-bearer-subject", "admin"), ("x-bearer-anything", "1"), ("x-bearer-subject", "2"))
    answer = decide(POLICY, "/pub.Svc/M", headers(None, *spoofed), lambda t: None, grpc=True)
    assert answer == Allow(None, ("x-bearer-subject", "x-bearer-anything"))
    assert isinstance(answer, Allow)
    assert answer.headers == ()
    assert answer.remove == ("x-bearer-subject", "x-bearer-anything")


def test_a_path_not_in_normal_form_is_refused_even_for_public_methods(issuer: TestIssuer) -> None:
    token = issuer.token(scopes=["orders.write"])
    answer = decide(
        POLICY,
        "/pub.Svc/../shop.v1.Orders/Create",
        headers(f"Bearer {token}"),
        lambda t: None,
        grpc=True,
    )
    assert isinstance(answer, Deny) and isinstance(answer.error, Forbidden)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (None, TokenMissing),
        ("Basic dXNlcjpwYXNz", TokenMalformed),
        ("Bearer", TokenMalformed),
        ("Bearer a b", TokenMalformed),
        ("Bearer a,Bearer b", TokenMalformed),  # how Envoy shows two headers
        ("Bearer " + "a" * 9000, TokenMalformed),
    ],
)
def test_the_one_authorization_header_rules_are_the_interceptors(
    value: str | None, error: type[Exception]
) -> None:
    for grpc in (True, False):
        answer = decide(POLICY, "/shop.v1.Orders/Get", headers(value), lambda t: None, grpc=grpc)
        assert isinstance(answer, Deny) and isinstance(answer.error, error)
        assert answer.grpc is grpc


def test_a_cache_miss_is_verified_then_scoped(issuer: TestIssuer) -> None:
    verifier = issuer.verifier(audience="test")
    token = issuer.token(subject="svc", scopes=["orders.read"])
    answer = decide(
        POLICY,
        "/shop.v1.Orders/Create",
        headers(f"bearer  {token}"),
        verifier.lookup,
        grpc=True,
        shortcut=True,
    )
    assert isinstance(answer, PendingCheck)
    assert token not in repr(answer)
    assert answer.token == token
    refused = answer.finish(verifier.verify(answer.token))
    assert isinstance(refused, Deny) and isinstance(refused.error, InsufficientScope)
    assert refused.error.required_scopes == ("orders.write",)
    later = decide(
        POLICY, "/shop.v1.Orders/Get", headers(f"Bearer {token}"), lambda t: None, grpc=False
    )
    assert isinstance(later, PendingCheck)
    expired = TokenExpired()
    assert later.finish(expired) == Deny(expired, False)


def test_a_cache_hit_needs_no_verification_and_the_shortcut_stays_strict(
    issuer: TestIssuer,
) -> None:
    verifier = issuer.verifier(audience="test")
    token = issuer.token(subject="svc", scopes=["orders.read"])
    verifier.verify(token)  # now cached
    for value in (f"Bearer {token}", f"bearer {token}", f"BEARER   {token}"):
        answer = decide(
            POLICY, "/shop.v1.Orders/Get", headers(value), verifier.lookup, grpc=True, shortcut=True
        )
        assert isinstance(answer, Allow) and answer.principal is not None, value
    for value in (f"Bearer {token} ", f"Bearer {token},Bearer {token}", f"Bearer  {token}x"):
        answer = decide(
            POLICY, "/shop.v1.Orders/Get", headers(value), verifier.lookup, grpc=True, shortcut=True
        )
        assert not isinstance(answer, Allow), value


def test_a_strict_policy_refuses_unnamed_methods_after_authentication(issuer: TestIssuer) -> None:
    verifier = issuer.verifier(audience="test")
    token = issuer.token(scopes=["orders.read"])
    missing = decide(STRICT, "/other.Svc/M", headers(None), verifier.lookup, grpc=True)
    assert isinstance(missing, Deny) and isinstance(missing.error, TokenMissing)
    pending = decide(STRICT, "/other.Svc/M", headers(f"Bearer {token}"), verifier.lookup, grpc=True)
    assert isinstance(pending, PendingCheck)
    refused = pending.finish(verifier.verify(pending.token))
    assert isinstance(refused, Deny) and isinstance(refused.error, Forbidden)
    hit = decide(STRICT, "/other.Svc/M", headers(f"Bearer {token}"), verifier.lookup, grpc=True)
    assert isinstance(hit, Deny) and isinstance(hit.error, Forbidden)
    named = decide(
        STRICT, "/shop.v1.Orders/Get", headers(f"Bearer {token}"), verifier.lookup, grpc=True
    )
    assert isinstance(named, Allow)


def test_the_identity_headers_replace_or_remove_every_spoofed_one() -> None:
    principal = Principal(subject="svc", scopes=frozenset({"b", "a"}))
    strays = ("x-bearer-subject", "x-bearer-client-id", "x-bearer-token-id", "x-bearer-role")
    answer = Allow(principal, strays)
    assert answer.headers == (("x-bearer-subject", "svc"), ("x-bearer-scopes", "a b"))
    assert answer.remove == ("x-bearer-client-id", "x-bearer-token-id", "x-bearer-role")
    full = Allow(Principal(subject="s", client_id="c", token_id="j"), strays)
    assert dict(full.headers) == {
        "x-bearer-subject": "s",
        "x-bearer-scopes": "",
        "x-bearer-client-id": "c",
        "x-bearer-token-id": "j",
    }
    assert full.remove == ("x-bearer-role",)


def test_header_values_are_printable_ascii() -> None:
    assert header_value("svc-1@example.com") == "svc-1@example.com"
    assert header_value("José 100%") == "Jos%C3%A9 100%25"
    assert header_value("a\r\nx-bearer-subject: admin") == "a%0D%0Ax-bearer-subject: admin"


def test_the_header_map_gives_authorization_and_every_identity_name() -> None:
    found = headers_of(
        {
            ":path": "/a.B/C",
            "authorization": "Bearer a,Bearer b",
            "x-bearer-subject": "admin",
            "x-bearer-role": "root",
            "x-other": "1",
        }
    )
    assert sorted(found) == [
        ("authorization", "Bearer a,Bearer b"),
        ("x-bearer-role", ""),
        ("x-bearer-subject", ""),
    ]
    assert headers_of({}) == []
