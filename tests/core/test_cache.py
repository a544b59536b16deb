"""The verified-token cache: exact keys (held as SHA-256 digests, not strings), b64tokens
only, bounded, expiry on every hit, and compacted entries equal to what was verified."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from bearer_grpc.core.cache import TokenCache
from bearer_grpc.core.tokens import Principal

NOW = 1_800_000_000


def principal(n: int, *, exp: int = NOW + 600, scope: str = "a b") -> Principal:
    """Like check_claims builds them: claims decoded from JSON, each its own copies."""
    claims: dict[str, Any] = {
        "".join(["i", "ss"]): "".join(["https://", "issuer.test"]),
        "sub": f"svc-{n}",
        "aud": "".join(["ord", "ers"]),
        "exp": exp,
        "iat": NOW,
        "nbf": NOW,
        "jti": f"jti-{n}",
        "client_id": f"svc-{n}",
        "scope": "".join([scope]),
    }
    return Principal(
        subject=claims["sub"],
        scopes=frozenset(claims["scope"].split()),
        token_id=claims["jti"],
        issuer=claims["iss"],
        audience=(claims["aud"],),
        client_id=claims["client_id"],
        issued_at=NOW,
        expires_at=exp,
        claims=MappingProxyType(dict(claims)),
    )


def test_hit_returns_the_verified_principal_unchanged() -> None:
    cache = TokenCache(10, leeway=0)
    original = principal(1)
    cache.put("tok.en.one", original)
    cached = cache.get("tok.en.one", NOW)
    assert cached is original
    assert cached == principal(1)
    assert dict(cached.claims) == dict(principal(1).claims)
    assert (cache.hits, cache.misses) == (1, 0)


def test_entries_share_what_tokens_have_in_common() -> None:
    cache = TokenCache(10, leeway=0)
    cache.put("t.one", principal(1))
    cache.put("t.two", principal(2))
    one, two = cache.get("t.one", NOW), cache.get("t.two", NOW)
    assert one is not None and two is not None
    assert one.issuer is two.issuer and one.scopes is two.scopes
    assert one.audience is two.audience
    assert one.claims["scope"] is two.claims["scope"]
    assert next(iter(one.claims)) is next(iter(two.claims))
    assert one.client_id is one.subject
    assert one.claims["client_id"] is one.claims["sub"] is one.subject
    assert one.subject != two.subject and one.token_id != two.token_id


@pytest.mark.parametrize(
    "key", ["tok.en ", " tok.en", "tok en", "tok.en\n", "tok\u0130en", "", "tok=en", "Bearer x"]
)
def test_only_b64tokens_are_stored(key: str) -> None:
    cache = TokenCache(10)
    cache.put(key, principal(1))
    assert len(cache) == 0
    assert cache.get(key, NOW) is None


def test_keys_are_exact_strings() -> None:
    cache = TokenCache(10)
    cache.put("tok.en", principal(1))
    for other in ("tok.en=", "Tok.en", "tok.en "):
        assert cache.get(other, NOW) is None
    assert cache.get("tok.en", NOW) is not None


def test_keys_are_exact_strings_near_the_stored_one() -> None:
    # Digest keys: a one-character change anywhere, or a prefix, is a different key.
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    cache = TokenCache(10)
    cache.put(token, principal(1))
    for i in range(len(token)):
        swapped = "A" if token[i] != "A" else "B"
        assert cache.get(token[:i] + swapped + token[i + 1 :], NOW) is None
        assert cache.get(token[:i], NOW) is None
    assert cache.get(token, NOW) is not None


def test_the_cache_keeps_no_token_string() -> None:
    # Memory: what is kept per token is a 32-byte SHA-256 digest, not the string.
    token = "tok.en." + "x" * 400
    cache = TokenCache(10)
    cache.put(token, principal(1))
    keys = list(cache._entries)
    assert [type(k) for k in keys] == [bytes] and len(keys[0]) == 32
    assert token.encode() not in keys[0]


@pytest.mark.parametrize("key", ["tok.en\ud800", "\udfff", "tok\u00e9en"])
def test_strings_that_are_no_b64token_are_misses_not_errors(key: str) -> None:
    cache = TokenCache(10)
    cache.put("tok.en", principal(1))
    cache.put(key, principal(2))
    assert cache.get(key, NOW) is None
    assert len(cache) == 1


def test_expired_entries_are_missed_and_dropped() -> None:
    cache = TokenCache(10, leeway=30)
    cache.put("tok.en", principal(1, exp=NOW))
    assert cache.get("tok.en", NOW + 29) is not None
    assert cache.get("tok.en", NOW + 30) is None
    assert len(cache) == 0


def test_size_is_bounded_oldest_first() -> None:
    cache = TokenCache(3)
    for n in range(5):
        cache.put(f"t.{n}", principal(n))
    assert len(cache) == 3
    assert [cache.get(f"t.{n}", NOW) is not None for n in range(5)] == [False, False] + [True] * 3


def test_zero_size_caches_nothing() -> None:
    cache = TokenCache(0)
    cache.put("tok.en", principal(1))
    assert len(cache) == 0


def test_pool_stops_growing_when_full() -> None:
    cache = TokenCache(20_000)
    for n in range(5_000):
        cache.put(f"t.{n}", principal(n, scope=f"s{n}"))
    assert len(cache._pool._values) <= 4096
    assert cache.get("t.4999", NOW) == principal(4999, scope="s4999")
