"""Discovery URLs, fetch targets, answer rules and refresh bounds, without I/O."""

from __future__ import annotations

import pytest

from bearer_grpc.core.discovery import (
    Body,
    Refresh,
    accept_status,
    check_url,
    discovery_urls,
    max_age,
    read_discovery,
    refresh_after,
)
from bearer_grpc.core.errors import FetchError


def test_discovery_urls_append_then_insert() -> None:
    assert discovery_urls("https://idp.example") == (
        "https://idp.example/.well-known/openid-configuration",
        "https://idp.example/.well-known/oauth-authorization-server",
    )
    assert discovery_urls("https://sso.example/realms/shop/") == (
        "https://sso.example/realms/shop/.well-known/openid-configuration",
        "https://sso.example/.well-known/oauth-authorization-server/realms/shop",
    )
    with pytest.raises(ValueError):
        discovery_urls("https://idp.example/?tenant=x")


@pytest.mark.parametrize(
    "url",
    ["https://idp.example/keys", "http://127.0.0.1:8080/k", "http://localhost/k", "http://[::1]/k"],
)
def test_allowed_urls(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://idp.example/keys",
        "http://192.168.1.1/k",
        "file:///etc/passwd",
        "https://a:b@idp/k",
        "https://idp/k#frag",
        "https:///k",
        "https://idp:99999/k",
        5,
        "data:,{}",
    ],
)
def test_refused_urls(url: object) -> None:
    with pytest.raises(ValueError):
        check_url(url)


def test_discovery_document_issuer_must_match_exactly() -> None:
    doc = b'{"issuer": "https://idp.example", "jwks_uri": "https://idp.example/keys"}'
    assert read_discovery(doc, issuer="https://idp.example").jwks_uri == "https://idp.example/keys"
    for issuer in ("https://idp.example/", "https://IDP.example"):
        with pytest.raises(FetchError):
            read_discovery(doc, issuer=issuer)
    plain_http = b'{"issuer": "https://idp.example", "jwks_uri": "http://evil.example/k"}'
    duplicate = b'{"issuer": "https://idp.example", "issuer": "https://idp.example"}'
    for bad in (plain_http, duplicate, b"[]"):
        with pytest.raises(FetchError):
            read_discovery(bad, issuer="https://idp.example")


def test_status_rules() -> None:
    assert accept_status(200, have_cached=False) is True
    assert accept_status(304, have_cached=True) is False
    for status, cached in ((304, False), (201, True), (301, True), (204, False)):
        with pytest.raises(FetchError):
            accept_status(status, have_cached=cached)


def test_body_cap_and_deadline() -> None:
    now = [0.0]
    body = Body(10, None, clock=lambda: now[0], seconds=5)
    body.add(b"12345")
    with pytest.raises(FetchError):
        body.add(b"123456")
    with pytest.raises(FetchError):
        Body(10, "11", clock=lambda: 0.0, seconds=5)
    late = Body(10, "4", clock=lambda: now[0], seconds=5)
    now[0] = 6
    with pytest.raises(FetchError):
        late.add(b"1")


def test_cache_control_within_bounds() -> None:
    bounds = Refresh(default=300, minimum=60, maximum=3600)
    assert max_age("public, max-age=600") == 600
    assert max_age("private, no-cache, no-store, must-revalidate") == 0
    assert max_age('max-age="120"') == 120 and max_age(None) is None and max_age("public") is None
    assert refresh_after("max-age=600", bounds) == 600
    assert refresh_after("no-cache", bounds) == 60
    assert refresh_after("max-age=999999", bounds) == 3600
    assert refresh_after(None, bounds) == 300
    with pytest.raises(ValueError):
        Refresh(default=10, minimum=60)
