"""``bearer_grpc.aio.ClientCredentials`` against a real TokenService.

The cases of ``test_client_credentials.py`` on an event loop: one shared request for
100 concurrent first calls, renewal ahead of expiry without making calls wait, an
unreachable token service (a clear error, then recovery on its own), the secret kept
out of ``repr``, errors and logs.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc.service.admin import NewClient
from bearer_grpc.service.server import ServeConfig
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import sqlite_url
from bearer_grpc.testing import FrozenClock
from tests.client._echo import Gate, ainvoke, aio_echo_server, bearer_values, token_of
from tests.client.conftest import DEADLINE, IssueSpy, verifier_for
from tests.harness import RunningService, running_service

FAST_BACKOFF = bearer_grpc.Backoff(initial=0.05, maximum=0.2)
_T = TypeVar("_T")


async def _eventually(attempt: Callable[[], Awaitable[_T | None]]) -> _T:
    """Retry ``attempt`` until it returns a value; fail after :data:`DEADLINE`."""
    async with asyncio.timeout(DEADLINE):
        while True:
            value = await attempt()
            if value is not None:
                return value
            await asyncio.sleep(0.01)


async def _called_token(channel: grpc.aio.Channel) -> str | None:
    (answer,) = await ainvoke(channel, "unary_unary")
    return token_of(answer)


def _channel(target: str, source: object) -> grpc.aio.Channel:
    interceptor = bearer_grpc.aio.BearerClientInterceptor(source)  # type: ignore[arg-type]
    return grpc.aio.insecure_channel(target, interceptors=interceptor)


def test_repr_hides_secret(service: RunningService, client: NewClient) -> None:
    tokens = bearer_grpc.aio.ClientCredentials(
        service.target, client.client_id, client.client_secret
    )
    assert client.client_secret not in repr(tokens)
    assert client.client_id in repr(tokens)
    assert "abc.def" not in repr(bearer_grpc.aio.StaticToken("abc.def"))


def test_concurrent_first_calls_issue_one_token(
    service: RunningService, client: NewClient, spy: IssueSpy
) -> None:
    class CountingSource:
        def __init__(self, inner: bearer_grpc.aio.ClientCredentials) -> None:
            self.inner = inner
            self.entered = 0
            self.all_entered = asyncio.Event()

        async def token(self) -> str:
            self.entered += 1
            if self.entered == 100:
                self.all_entered.set()
            return await self.inner.token()

        def invalidate(self, token: str) -> None:
            self.inner.invalidate(token)

    async def main() -> set[str | None]:
        async with (
            bearer_grpc.aio.ClientCredentials(
                service.target, client.client_id, client.client_secret
            ) as tokens,
            aio_echo_server() as echo,
        ):
            source = CountingSource(tokens)
            async with _channel(echo.target, source) as channel:
                calls = [asyncio.ensure_future(_called_token(channel)) for _ in range(100)]
                await asyncio.wait_for(source.all_entered.wait(), DEADLINE)
                await asyncio.to_thread(spy.requests.wait_for, 1)
                spy.gate.set()
                seen = set(await asyncio.gather(*calls))
            assert len(echo.gate.seen) == 100
            return seen

    spy.gate.clear()  # hold the first IssueToken until every caller waits for a token
    seen = asyncio.run(main())
    assert len(seen) == 1
    assert spy.count == 1


def test_renews_before_expiry_without_making_calls_wait(data_dir: Path, clock: FrozenClock) -> None:
    settings = ServiceSettings(access_ttl=60)
    with running_service(sqlite_url(data_dir), settings=settings, clock=clock) as service:
        client = service.add_client()
        spy = IssueSpy(service)
        gate = Gate(verifier=verifier_for(service, clock))  # no leeway: expired is expired

        async def main() -> None:
            async with (
                bearer_grpc.aio.ClientCredentials(
                    service.target,
                    client.client_id,
                    client.client_secret,
                    audience="orders",
                    clock=clock,
                ) as tokens,
                aio_echo_server(gate) as echo,
                _channel(echo.target, tokens) as channel,
            ):
                first = await _called_token(channel)
                clock.advance(40)  # renewal is due at 48 s (a fifth of 60 s left)
                assert await _called_token(channel) == first
                assert spy.count == 1

                spy.gate.clear()  # the renewal request hangs: calls must not wait for it
                clock.advance(10)
                assert await _called_token(channel) == first
                await asyncio.to_thread(spy.requests.wait_for, 2)
                assert await _called_token(channel) == first
                spy.gate.set()

                async def renewed() -> str | None:
                    token = await _called_token(channel)
                    return token if token != first else None

                second = await _eventually(renewed)
                clock.advance(15)  # the first token has expired, the second lives to 110 s
                assert await _called_token(channel) == second

        asyncio.run(main())
        assert spy.count == 2
        assert gate.failures == []


def test_token_service_down_then_recovers_by_itself(data_dir: Path) -> None:
    url = sqlite_url(data_dir)
    with running_service(url) as service:
        client = service.add_client()
        target = service.target

    async def main() -> None:
        async with (
            bearer_grpc.aio.ClientCredentials(
                target, client.client_id, client.client_secret, backoff=FAST_BACKOFF
            ) as tokens,
            aio_echo_server() as echo,
            _channel(echo.target, tokens) as channel,
        ):
            for _ in range(2):  # the first request fails; the next call fails fast
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await ainvoke(channel, "unary_unary")
                assert info.value.code() is grpc.StatusCode.UNAVAILABLE
                details = info.value.details() or ""
                assert f"token service at {target}: UNAVAILABLE" in details
            assert echo.gate.seen == []

            config = ServeConfig(listen=target, grace=1)
            with running_service(url, config=config) as service:
                spy = IssueSpy(service)
                await asyncio.to_thread(spy.requests.wait_for, 1)  # retried on its own

                async def attempt() -> list[object] | None:
                    try:
                        return await ainvoke(channel, "unary_unary")  # type: ignore[return-value]
                    except grpc.aio.AioRpcError:
                        return None

                (answer,) = await _eventually(attempt)
                assert bearer_values(answer) == [f"Bearer {await tokens.token()}"]  # type: ignore[arg-type]

    asyncio.run(main())


def test_wrong_secret_is_a_clear_error_without_the_secret(
    service: RunningService, client: NewClient, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = client.client_secret[::-1]

    async def main() -> list[grpc.aio.AioRpcError]:
        errors = []
        async with (
            bearer_grpc.aio.ClientCredentials(service.target, client.client_id, wrong) as tokens,
            aio_echo_server() as echo,
            _channel(echo.target, tokens) as channel,
        ):
            assert wrong not in repr(tokens)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await ainvoke(channel, "unary_unary")
            errors.append(info.value)
            with pytest.raises(grpc.aio.AioRpcError) as direct:
                await tokens.token()
            errors.append(direct.value)
            assert echo.gate.seen == []
        return errors

    for err in asyncio.run(main()):
        assert err.code() is grpc.StatusCode.UNAUTHENTICATED
        text = "".join(traceback.format_exception(err)) + repr(err) + (err.details() or "")
        assert "token service" in text
        for secret in (wrong, client.client_secret):
            assert secret not in text
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert wrong not in logged


def test_closed_source_refuses(service: RunningService, client: NewClient) -> None:
    async def main() -> None:
        tokens = bearer_grpc.aio.ClientCredentials(
            service.target, client.client_id, client.client_secret
        )
        assert await tokens.token()
        await tokens.aclose()
        await tokens.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await tokens.token()

    asyncio.run(main())


def test_serves_a_new_loop_after_the_old_one_closed(
    service: RunningService, client: NewClient, spy: IssueSpy
) -> None:
    tokens = bearer_grpc.aio.ClientCredentials(
        service.target, client.client_id, client.client_secret
    )
    first = asyncio.run(tokens.token())
    second = asyncio.run(tokens.token())
    assert first == second  # still cached: no second request
    assert spy.count == 1
    asyncio.run(tokens.aclose())
