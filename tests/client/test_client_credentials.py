"""``bearer_grpc.ClientCredentials`` against a real TokenService (sync grpc).

Single-flight first requests, renewal ahead of expiry without making calls wait, an
unreachable token service (a clear error, then recovery on its own), and the client
secret kept out of ``repr``, errors and logs.
"""

from __future__ import annotations

import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

import bearer_grpc
from bearer_grpc.service.admin import NewClient
from bearer_grpc.service.server import ServeConfig
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import sqlite_url
from bearer_grpc.testing import FrozenClock
from tests.client._echo import (
    EchoServer,
    Gate,
    bearer_values,
    invoke,
    sync_echo_server,
    token_of,
)
from tests.client.conftest import DEADLINE, Counter, IssueSpy, verifier_for
from tests.harness import RunningService, running_service, wait_until

FAST_BACKOFF = bearer_grpc.Backoff(initial=0.05, maximum=0.2)


class CountingSource:
    """A token source that counts the callers that entered ``token()``."""

    def __init__(self, inner: bearer_grpc.ClientCredentials) -> None:
        self.inner = inner
        self.entered = Counter()

    def token(self) -> str:
        self.entered.add()
        return self.inner.token()

    def invalidate(self, token: str) -> None:
        self.inner.invalidate(token)


def _channel(target: str, source: object) -> grpc.Channel:
    interceptor = bearer_grpc.BearerClientInterceptor(source)  # type: ignore[arg-type]
    return grpc.intercept_channel(grpc.insecure_channel(target), interceptor)


def _called_token(channel: grpc.Channel) -> str | None:
    (answer,) = invoke(channel, "unary_unary")
    return token_of(answer)


def test_repr_hides_secret(service: RunningService, client: NewClient) -> None:
    with bearer_grpc.ClientCredentials(
        service.target, client.client_id, client.client_secret, scopes=["orders.read"]
    ) as tokens:
        text = repr(tokens)
    assert client.client_secret not in text
    assert client.client_id in text
    assert "orders.read" in text


def test_static_token_repr_and_syntax() -> None:
    assert "abc.def" not in repr(bearer_grpc.StaticToken("abc.def"))
    for bad in ("", "Bearer abc", "two words", "line\nbreak"):
        with pytest.raises(ValueError) as info:
            bearer_grpc.StaticToken(bad)
        assert bad not in str(info.value) or not bad


def test_concurrent_first_calls_issue_one_token(
    service: RunningService, client: NewClient, spy: IssueSpy, echo: EchoServer
) -> None:
    spy.gate.clear()  # hold the first IssueToken until every caller waits for a token
    with bearer_grpc.ClientCredentials(
        service.target, client.client_id, client.client_secret
    ) as tokens:
        source = CountingSource(tokens)
        with _channel(echo.target, source) as channel, ThreadPoolExecutor(100) as pool:
            calls = [pool.submit(_called_token, channel) for _ in range(100)]
            source.entered.wait_for(100)
            spy.requests.wait_for(1)
            spy.gate.set()
            seen = {call.result(timeout=DEADLINE) for call in calls}
    assert spy.count == 1
    (token,) = seen
    assert echo.gate.seen == [[f"Bearer {token}"]] * 100


def test_renews_before_expiry_without_making_calls_wait(data_dir: Path, clock: FrozenClock) -> None:
    settings = ServiceSettings(access_ttl=60)
    with running_service(sqlite_url(data_dir), settings=settings, clock=clock) as service:
        client = service.add_client()
        spy = IssueSpy(service)
        gate = Gate(verifier=verifier_for(service, clock))  # no leeway: expired is expired
        with (
            sync_echo_server(gate) as echo,
            bearer_grpc.ClientCredentials(
                service.target,
                client.client_id,
                client.client_secret,
                audience="orders",
                clock=clock,
            ) as tokens,
            _channel(echo.target, tokens) as channel,
        ):
            first = _called_token(channel)
            clock.advance(40)  # renewal is due at 48 s (a fifth of 60 s left)
            assert _called_token(channel) == first
            assert spy.count == 1

            spy.gate.clear()  # the renewal request hangs: calls must not wait for it
            clock.advance(10)
            assert _called_token(channel) == first
            spy.requests.wait_for(2)
            spy.gate.set()
            second = wait_until(lambda: (token := _called_token(channel)) != first and token)

            clock.advance(15)  # the first token has expired, the second lives until 110 s
            assert _called_token(channel) == second
        assert spy.count == 2
        assert gate.failures == []


def test_token_service_down_then_recovers_by_itself(data_dir: Path, echo: EchoServer) -> None:
    url = sqlite_url(data_dir)
    with running_service(url) as service:
        client = service.add_client()
        target = service.target
    with (
        bearer_grpc.ClientCredentials(
            target, client.client_id, client.client_secret, backoff=FAST_BACKOFF
        ) as tokens,
        _channel(echo.target, tokens) as channel,
    ):
        for _ in range(2):  # the first request fails; the next call fails fast
            with pytest.raises(grpc.RpcError) as info:
                invoke(channel, "unary_unary")
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE
            assert f"token service at {target}: UNAVAILABLE" in (info.value.details() or "")
        assert echo.gate.seen == []

        config = ServeConfig(listen=target, grace=1)
        with running_service(url, config=config) as service:
            spy = IssueSpy(service)
            spy.requests.wait_for(1)  # the background retried without any caller
            (answer,) = wait_until(lambda: _try_invoke(channel))
            assert bearer_values(answer) == [f"Bearer {tokens.token()}"]


def _try_invoke(channel: grpc.Channel) -> list[object] | None:
    try:
        return invoke(channel, "unary_unary")  # type: ignore[return-value]
    except grpc.RpcError:
        return None


def test_wrong_secret_is_a_clear_error_without_the_secret(
    service: RunningService,
    client: NewClient,
    echo: EchoServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = client.client_secret[::-1]
    with (
        bearer_grpc.ClientCredentials(service.target, client.client_id, wrong) as tokens,
        _channel(echo.target, tokens) as channel,
    ):
        assert wrong not in repr(tokens)
        with pytest.raises(grpc.RpcError) as info:
            invoke(channel, "unary_unary")
        with pytest.raises(grpc.RpcError) as direct:
            tokens.token()
    for err in (info.value, direct.value):
        assert err.code() is grpc.StatusCode.UNAUTHENTICATED
        text = "".join(traceback.format_exception(err)) + repr(err) + (err.details() or "")
        assert "token service" in text
        for secret in (wrong, client.client_secret):
            assert secret not in text
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert wrong not in logged
    assert echo.gate.seen == []


def test_closed_source_refuses(service: RunningService, client: NewClient) -> None:
    tokens = bearer_grpc.ClientCredentials(service.target, client.client_id, client.client_secret)
    assert tokens.token()
    tokens.close()
    tokens.close()
    with pytest.raises(RuntimeError, match="closed"):
        tokens.token()
