"""``bearer_grpc.aio.BearerClientInterceptor`` on ``grpc.aio`` channels to an aio server.

The same cases as ``test_interceptor.py``, plus metadata given as ``grpc.aio.Metadata``.
Each test runs its own event loop (``asyncio.run``); the TokenService runs in the
harness's loop thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import grpc
import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc.core.errors import AuthError, TokenExpired, TokenInvalid, TokenRevoked
from bearer_grpc.service.admin import NewClient
from tests.client._echo import (
    KINDS,
    Gate,
    ainvoke,
    aio_echo_server,
    bearer_values,
    reject_all,
    reject_first_token,
)
from tests.client.conftest import DEADLINE, IssueSpy
from tests.harness import RunningService

TOKEN = "header.payload.signature"
Scenario = Callable[[grpc.aio.Channel, Gate], Coroutine[Any, Any, None]]


def run_static(scenario: Scenario, gate: Gate | None = None) -> Gate:
    """Run ``scenario`` against an aio echo server with a StaticToken channel."""

    async def main() -> Gate:
        interceptor = bearer_grpc.aio.BearerClientInterceptor(bearer_grpc.aio.StaticToken(TOKEN))
        async with aio_echo_server(gate) as echo:
            async with grpc.aio.insecure_channel(echo.target, interceptors=interceptor) as channel:
                await scenario(channel, echo.gate)
            return echo.gate

    return asyncio.run(main())


def run_credentials(
    service: RunningService, client: NewClient, scenario: Scenario, gate: Gate
) -> Gate:
    """Run ``scenario`` with tokens from an aio ClientCredentials of ``service``."""

    async def main() -> Gate:
        async with (
            bearer_grpc.aio.ClientCredentials(
                service.target, client.client_id, client.client_secret, audience="orders"
            ) as tokens,
            aio_echo_server(gate) as echo,
        ):
            interceptor = bearer_grpc.aio.BearerClientInterceptor(tokens)
            async with grpc.aio.insecure_channel(echo.target, interceptors=interceptor) as channel:
                await scenario(channel, echo.gate)
            return echo.gate

    return asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_sends_bearer_token_once(kind: str) -> None:
    async def scenario(channel: grpc.aio.Channel, _gate: Gate) -> None:
        for answer in await ainvoke(channel, kind):
            assert bearer_values(answer) == [f"Bearer {TOKEN}"]

    run_static(scenario)


@pytest.mark.parametrize("as_metadata", [False, True], ids=["tuples", "aio_metadata"])
@pytest.mark.parametrize("kind", KINDS)
def test_keeps_other_metadata_and_replaces_authorization(kind: str, as_metadata: bool) -> None:
    entries = (
        ("x-first", "1"),
        ("authorization", "Bearer old"),
        ("x-trace-bin", b"\x00\x01"),
        ("x-last", "2"),
    )
    metadata = grpc.aio.Metadata(*entries) if as_metadata else entries

    async def scenario(channel: grpc.aio.Channel, _gate: Gate) -> None:
        for answer in await ainvoke(channel, kind, metadata=metadata):
            assert bearer_values(answer) == [f"Bearer {TOKEN}"]
            custom = [(k, v) for k, v in answer if k.startswith("x-")]
            assert custom == [("x-first", "1"), ("x-trace-bin", "0001"), ("x-last", "2")]

    run_static(scenario)


def test_unpacks_into_an_interceptor_list() -> None:
    bearer = bearer_grpc.aio.BearerClientInterceptor(bearer_grpc.aio.StaticToken(TOKEN))

    async def main() -> None:
        async with aio_echo_server() as echo:
            with pytest.raises(ValueError, match="must be"):  # grpc.aio refuses it
                grpc.aio.insecure_channel(echo.target, interceptors=[bearer])  # type: ignore[list-item]
            async with grpc.aio.insecure_channel(echo.target, interceptors=[*bearer]) as channel:
                for kind in KINDS:
                    for answer in await ainvoke(channel, kind):
                        assert bearer_values(answer) == [f"Bearer {TOKEN}"]

    asyncio.run(main())


def test_does_not_change_the_callers_metadata() -> None:
    metadata = grpc.aio.Metadata(("x-a", "1"), ("authorization", "Bearer old"))

    async def scenario(channel: grpc.aio.Channel, _gate: Gate) -> None:
        await ainvoke(channel, "unary_unary", metadata=metadata)

    run_static(scenario)
    assert list(metadata) == [("x-a", "1"), ("authorization", "Bearer old")]


# -- retry on a stale token ---------------------------------------------------------------


@pytest.mark.parametrize("error", [TokenRevoked(), TokenExpired()], ids=["revoked", "expired"])
def test_unary_unary_stale_token_retried_with_fresh_one(
    service: RunningService, client: NewClient, spy: IssueSpy, error: AuthError
) -> None:
    async def scenario(channel: grpc.aio.Channel, _gate: Gate) -> None:
        call = channel.unary_unary("/test.v1.Echo/Unary")(b"x", timeout=10)
        await call
        assert await call.code() is grpc.StatusCode.OK

    gate = run_credentials(
        service, client, scenario, Gate(reject=reject_first_token(), reject_with=error)
    )
    first, second = gate.tokens()
    assert first != second
    assert spy.count == 2


def test_unary_unary_retried_only_once(
    service: RunningService, client: NewClient, spy: IssueSpy
) -> None:
    async def scenario(channel: grpc.aio.Channel, _gate: Gate) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await ainvoke(channel, "unary_unary")
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED

    gate = run_credentials(service, client, scenario, Gate(reject=reject_all))
    assert len(gate.seen) == 2
    assert spy.count == 2


def test_unary_unary_invalid_token_not_retried(service: RunningService, client: NewClient) -> None:
    async def scenario(channel: grpc.aio.Channel, _gate: Gate) -> None:
        with pytest.raises(grpc.aio.AioRpcError):
            await ainvoke(channel, "unary_unary")

    gate = run_credentials(
        service, client, scenario, Gate(reject=reject_all, reject_with=TokenInvalid())
    )
    assert len(gate.seen) == 1


def test_static_token_not_resent() -> None:
    async def scenario(channel: grpc.aio.Channel, _gate: Gate) -> None:
        with pytest.raises(grpc.aio.AioRpcError):
            await ainvoke(channel, "unary_unary")

    assert len(run_static(scenario, Gate(reject=reject_all)).seen) == 1


@pytest.mark.parametrize("kind", ["unary_stream", "stream_unary", "stream_stream"])
def test_streams_not_retried_but_their_stale_token_is_dropped(
    service: RunningService, client: NewClient, spy: IssueSpy, kind: str
) -> None:
    async def scenario(channel: grpc.aio.Channel, gate: Gate) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await ainvoke(channel, kind)
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert len(gate.seen) == 1  # not retried
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while True:  # the next calls succeed once the token was dropped (a deadline)
            try:
                await ainvoke(channel, kind)
                return
            except grpc.aio.AioRpcError:
                assert asyncio.get_running_loop().time() < deadline, "stale token kept"

    gate = run_credentials(service, client, scenario, Gate(reject=reject_first_token()))
    tokens = gate.tokens()
    assert tokens[0] != tokens[-1]
    assert spy.count == 2


def test_token_failure_is_the_calls_status() -> None:
    class Unreachable:
        async def token(self) -> str:
            raise bearer_grpc.aio.TokenRequestError(
                "tokens:1", grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, details="down")
            )

        def invalidate(self, token: str) -> None:
            pass

    async def main() -> None:
        interceptor = bearer_grpc.aio.BearerClientInterceptor(Unreachable())
        async with (
            aio_echo_server() as echo,
            grpc.aio.insecure_channel(echo.target, interceptors=interceptor) as channel,
        ):
            for kind in KINDS:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await ainvoke(channel, kind)
                assert info.value.code() is grpc.StatusCode.UNAVAILABLE
                assert "token service at tokens:1" in (info.value.details() or "")
            call = channel.unary_unary("/test.v1.Echo/Unary")(b"x", timeout=10)
            assert await call.code() is grpc.StatusCode.UNAVAILABLE
            assert echo.gate.seen == []

    asyncio.run(main())


# -- call credentials on an aio channel ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_call_credentials_over_local_credentials(kind: str) -> None:
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(),
        bearer_grpc.bearer_call_credentials(bearer_grpc.StaticToken(TOKEN)),
    )

    async def main() -> None:
        async with (
            aio_echo_server() as echo,
            grpc.aio.secure_channel(echo.local_target, credentials) as channel,
        ):
            for answer in await ainvoke(channel, kind):
                assert bearer_values(answer) == [f"Bearer {TOKEN}"]

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_aio_call_credentials_take_tokens_from_an_asyncio_source(kind: str) -> None:
    async def main() -> None:
        credentials = grpc.composite_channel_credentials(
            grpc.local_channel_credentials(),
            bearer_grpc.aio.bearer_call_credentials(bearer_grpc.aio.StaticToken(TOKEN)),
        )
        async with (
            aio_echo_server() as echo,
            grpc.aio.secure_channel(echo.local_target, credentials) as channel,
        ):
            for answer in await ainvoke(channel, kind):
                assert bearer_values(answer) == [f"Bearer {TOKEN}"]

    asyncio.run(main())


def test_aio_call_credentials_need_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        bearer_grpc.aio.bearer_call_credentials(bearer_grpc.aio.StaticToken(TOKEN))
