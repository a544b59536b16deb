"""TokenAuthority.verify caches verified principals, never decisions.

Each hit is checked again for expiry, audience, revocation and scopes, and a key the
authority stops trusting takes its cached tokens with it. Real authority, real SQLite
store, frozen clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bearer_grpc.core.cache import DEFAULT_CACHE_SIZE
from bearer_grpc.core.errors import InsufficientScope, TokenExpired, TokenInvalid, TokenRevoked
from bearer_grpc.service.admin import Admin, NewClient
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.grants import ClientCredentialsGrant
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import SqlStore, open_store, sqlite_url
from bearer_grpc.testing import FrozenClock

SETTINGS = ServiceSettings(access_ttl=600, leeway=30)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    store = open_store(sqlite_url(tmp_path / "data"))
    yield store
    store.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


def _authority(
    store: SqlStore, clock: FrozenClock, cache_size: int = DEFAULT_CACHE_SIZE
) -> TokenAuthority:
    authority = TokenAuthority(store, SETTINGS, clock=clock, cache_size=cache_size)
    authority.start()
    return authority


@pytest.fixture
def authority(store: SqlStore, clock: FrozenClock) -> TokenAuthority:
    return _authority(store, clock)


@pytest.fixture
def client(store: SqlStore) -> NewClient:
    return Admin(store).add_client(
        "orders-client", scopes=("orders.read", "orders.write"), audiences=("orders", "billing")
    )


def _token(authority: TokenAuthority, client: NewClient, *, audience: str = "orders") -> str:
    grant = ClientCredentialsGrant(client.client_id, client.client_secret)
    return authority.issue(grant, scopes=("orders.read",), audience=audience).access.token


def test_cache_hit_returns_the_same_principal(authority: TokenAuthority, client: NewClient) -> None:
    token = _token(authority, client)
    first = authority.verify(token, audience="orders")
    hits = authority.cache.hits
    second = authority.verify(token, audience="orders", required_scopes=("orders.read",))
    assert second == first  # the cache may keep an equal, compacted copy
    assert authority.cache.hits == hits + 1
    third = authority.verify(token, audience="orders")
    assert third is second  # the cached object, not a second verification
    assert first.subject == client.client_id


def test_token_revoked_after_caching_is_refused(
    authority: TokenAuthority, client: NewClient
) -> None:
    token = _token(authority, client)
    authority.verify(token, audience="orders")
    authority.revoke_token(token)
    hits = authority.cache.hits
    with pytest.raises(TokenRevoked):
        authority.verify(token, audience="orders")
    assert authority.cache.hits == hits + 1  # refused on the hit itself


def test_token_revoked_by_another_replica_is_refused_after_sync(
    store: SqlStore, clock: FrozenClock, client: NewClient
) -> None:
    authority, other = _authority(store, clock), _authority(store, clock)
    token = _token(authority, client)
    authority.verify(token, audience="orders")
    other.revoke_token(token)
    authority.sync()
    with pytest.raises(TokenRevoked):
        authority.verify(token, audience="orders")


def test_token_expired_after_caching_is_refused(
    authority: TokenAuthority, client: NewClient, clock: FrozenClock
) -> None:
    token = _token(authority, client)
    authority.verify(token, audience="orders")
    cached = authority.verify(token, audience="orders")
    clock.now = cached.expires_at + SETTINGS.leeway - 1  # last second within the leeway
    assert authority.verify(token, audience="orders") is cached
    clock.advance(1)
    with pytest.raises(TokenExpired):
        authority.verify(token, audience="orders")


def test_wrong_audience_on_cached_token_is_refused(
    authority: TokenAuthority, client: NewClient
) -> None:
    token = _token(authority, client, audience="orders")
    authority.verify(token, audience="orders")
    with pytest.raises(TokenInvalid):
        authority.verify(token, audience="billing")
    assert authority.verify(token, audience="orders").audience == ("orders",)


def test_missing_scope_on_cached_token_is_refused(
    authority: TokenAuthority, client: NewClient
) -> None:
    token = _token(authority, client)  # granted orders.read only
    authority.verify(token, audience="orders")
    hits = authority.cache.hits
    with pytest.raises(InsufficientScope):
        authority.verify(token, audience="orders", required_scopes=("orders.write",))
    assert authority.cache.hits == hits + 1


def test_token_of_a_dropped_key_is_refused_after_sync(
    authority: TokenAuthority, client: NewClient, store: SqlStore, clock: FrozenClock
) -> None:
    token = _token(authority, client)
    authority.verify(token, audience="orders")
    old_kid = authority.keys.signing_key(int(clock())).kid
    Admin(store, clock=clock).rotate_key(algorithm="ES256", delay=0, kek=None)
    clock.advance(1)  # the new key signs from here
    assert store.delete_key(old_kid)  # e.g. an operator withdrawing a compromised key
    authority.sync()
    assert old_kid not in authority.verifier.keys
    with pytest.raises(TokenInvalid):
        authority.verify(token, audience="orders")


def test_adding_a_key_keeps_the_cache(
    authority: TokenAuthority, client: NewClient, store: SqlStore, clock: FrozenClock
) -> None:
    token = _token(authority, client)
    authority.verify(token, audience="orders")
    cached = authority.verify(token, audience="orders")
    Admin(store, clock=clock).rotate_key(algorithm="ES256", delay=60, kek=None)
    authority.sync()
    assert len(authority.verifier.keys) == 2
    assert authority.verify(token, audience="orders") is cached


def test_cache_size_is_bounded(store: SqlStore, clock: FrozenClock, client: NewClient) -> None:
    authority = _authority(store, clock, cache_size=3)
    tokens = [_token(authority, client) for _ in range(5)]
    for token in tokens:
        authority.verify(token, audience="orders")
    assert len(authority.cache) == 3
    misses = authority.cache.misses
    assert authority.verify(tokens[0], audience="orders").subject == client.client_id
    assert authority.cache.misses == misses + 1  # evicted: verified again, still valid


def test_cache_size_zero_disables_caching(
    store: SqlStore, clock: FrozenClock, client: NewClient
) -> None:
    authority = _authority(store, clock, cache_size=0)
    token = _token(authority, client)
    first = authority.verify(token, audience="orders")
    hits = authority.cache.hits
    assert authority.verify(token, audience="orders") == first
    assert len(authority.cache) == 0
    assert authority.cache.hits == hits
