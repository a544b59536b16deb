"""``ClientCredentials`` against a real TokenService, sync and aio.

Single-flight first requests, renewal ahead of expiry without making calls wait, an
unreachable token service (a clear error, then recovery on its own), and the client
secret kept out of ``repr``, errors and logs.
"""

from __future__ import annotations

import asyncio
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc.service.admin import NewClient
from bearer_grpc.service.server import ServeConfig
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import sqlite_url
from bearer_grpc.testing import Echo, FrozenClock
from tests.client.conftest import (
    DEADLINE,
    FAST_BACKOFF,
    CountingSource,
    Flavour,
    Gate,
    IssueSpy,
    verifier_for,
)
from tests.harness import RunningService, running_service, wait_until


def test_repr_hides_secret(
    flavour: Flavour, shared_service: RunningService, unique_client: NewClient
) -> None:
    tokens = flavour.credentials(shared_service, unique_client, scopes=["orders.read"])
    text = repr(tokens.raw)
    assert unique_client.client_secret not in text
    assert unique_client.client_id in text
    assert "orders.read" in text
    assert "abc.def" not in repr(flavour.bearer.StaticToken("abc.def"))


@pytest.mark.parametrize("static_token", [bearer_grpc.StaticToken, bearer_grpc.aio.StaticToken])
def test_static_token_syntax(static_token: type) -> None:
    for bad in ("", "Bearer abc", "two words", "line\nbreak"):
        with pytest.raises(ValueError) as info:
            static_token(bad)
        assert bad not in str(info.value) or not bad


def test_concurrent_first_calls_issue_one_token(
    flavour: Flavour, service: RunningService, own_client: NewClient, spy: IssueSpy
) -> None:
    gate = Gate()
    echo = flavour.serve(Echo(refuse=gate))
    spy.gate.clear()  # hold the first IssueToken until every caller waits for a token
    source = CountingSource(flavour.credentials(service, own_client).raw, flavour.name)
    channel = flavour.channel(echo, source)
    with ThreadPoolExecutor(1) as caller:
        calls = caller.submit(channel.concurrent_tokens, 100)
        source.entered.wait_for(100)
        spy.requests.wait_for(1)
        spy.gate.set()
        seen = set(calls.result(DEADLINE))
    assert spy.count == 1
    (token,) = seen
    assert gate.seen == [[f"Bearer {token}"]] * 100


def test_renews_before_expiry_without_making_calls_wait(
    flavour: Flavour, data_dir: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ServiceSettings(access_ttl=60)
    with running_service(sqlite_url(data_dir), settings=settings, clock=clock) as service:
        client = service.add_client()
        spy = IssueSpy(service, monkeypatch)
        gate = Gate(verifier=verifier_for(service, clock))  # no leeway: expired is expired
        echo = flavour.serve(Echo(refuse=gate))
        tokens = flavour.credentials(service, client, audience="orders", clock=clock)
        channel = flavour.channel(echo, tokens)

        first = channel.token()
        clock.advance(40)  # renewal is due at 48 s (a fifth of 60 s left)
        assert channel.token() == first
        assert spy.count == 1

        spy.gate.clear()  # the renewal request hangs: calls must not wait for it
        clock.advance(10)
        assert channel.token() == first
        spy.requests.wait_for(2)
        assert channel.token() == first
        spy.gate.set()
        second = wait_until(lambda: (token := channel.token()) != first and token)

        clock.advance(15)  # the first token has expired, the second lives until 110 s
        assert channel.token() == second
        tokens.close()
        assert spy.count == 2
        assert gate.failures == []


def test_token_service_down_then_recovers_by_itself(
    flavour: Flavour, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate()
    echo = flavour.serve(Echo(refuse=gate))
    url = sqlite_url(data_dir)
    with running_service(url) as service:
        client = service.add_client()
        target = service.target
    tokens = flavour.credentials_at(target, client, backoff=FAST_BACKOFF)
    channel = flavour.channel(echo, tokens)
    for _ in range(2):  # the first request fails; the next call fails fast
        with pytest.raises(grpc.RpcError) as info:
            channel.call()
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        assert f"token service at {target}: UNAVAILABLE" in (info.value.details() or "")
    assert gate.seen == []

    config = ServeConfig(listen=target, grace=1)
    with running_service(url, config=config) as service:
        spy = IssueSpy(service, monkeypatch)
        spy.requests.wait_for(1)  # the background retried without any caller
        (answer,) = wait_until(channel.attempt)
        assert answer.authorization == (f"Bearer {tokens.token()}",)


def test_wrong_secret_is_a_clear_error_without_the_secret(
    flavour: Flavour,
    shared_service: RunningService,
    unique_client: NewClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = Gate()
    echo = flavour.serve(Echo(refuse=gate))
    wrong = unique_client.client_secret[::-1]
    tokens = flavour.credentials(shared_service, unique_client, secret=wrong)
    assert wrong not in repr(tokens.raw)
    channel = flavour.channel(echo, tokens)
    with pytest.raises(grpc.RpcError) as info:
        channel.call()
    with pytest.raises(grpc.RpcError) as direct:
        tokens.token()
    for err in (info.value, direct.value):
        assert err.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        details = err.details() or ""  # type: ignore[attr-defined]
        text = "".join(traceback.format_exception(err)) + repr(err) + details
        assert "token service" in text
        for secret in (wrong, unique_client.client_secret):
            assert secret not in text
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert wrong not in logged
    assert gate.seen == []


def test_closed_source_refuses(
    flavour: Flavour, shared_service: RunningService, unique_client: NewClient
) -> None:
    tokens = flavour.credentials(shared_service, unique_client)
    assert tokens.token()
    tokens.close()
    tokens.close()
    with pytest.raises(RuntimeError, match="closed"):
        tokens.token()


def test_aio_source_serves_a_new_loop_after_the_old_one_closed(
    service: RunningService, own_client: NewClient, spy: IssueSpy
) -> None:
    tokens = bearer_grpc.aio.ClientCredentials(
        service.target, own_client.client_id, own_client.client_secret
    )
    first = asyncio.run(tokens.token())
    second = asyncio.run(tokens.token())
    assert first == second  # still cached: no second request
    assert spy.count == 1
    asyncio.run(tokens.aclose())
