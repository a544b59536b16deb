"""``BearerClientInterceptor`` and ``bearer_call_credentials``, sync and aio.

Every call goes over a real channel to the Echo, which reports the metadata it received;
tokens come from a real TokenService where the test needs fresh ones. Tests of what only
one flavour has (``future()``, ``with_call()``, ``grpc.aio.Metadata``, unpacking into an
interceptor list, the running loop aio call credentials need) carry its name.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc.core.errors import AuthError, TokenExpired, TokenInvalid, TokenRevoked
from bearer_grpc.service.admin import NewClient
from bearer_grpc.testing import KINDS, Answer, Echo, Kind, call_aio, serve_aio
from tests.client.conftest import (
    Flavour,
    Gate,
    IssueSpy,
    reject_all,
    reject_first_token,
)
from tests.harness import RunningService, wait_until

TOKEN = "header.payload.signature"
STREAMS: list[Kind] = ["unary_stream", "stream_unary", "stream_stream"]


def _custom(answer: Answer) -> list[tuple[str, str]]:
    return [(key, value) for key, value in answer.metadata if key.startswith("x-")]


@pytest.mark.parametrize("kind", KINDS)
def test_sends_bearer_token_once(flavour: Flavour, echo: str, kind: Kind) -> None:
    channel = flavour.channel(echo, flavour.static(TOKEN))
    for answer in channel.call(kind):
        assert answer.authorization == (f"Bearer {TOKEN}",)


@pytest.mark.parametrize("kind", KINDS)
def test_keeps_other_metadata_in_order(flavour: Flavour, echo: str, kind: Kind) -> None:
    metadata = (("x-first", "1"), ("x-trace-bin", b"\x00\x01"), ("x-last", "2"))
    channel = flavour.channel(echo, flavour.static(TOKEN))
    for answer in channel.call(kind, metadata=metadata):
        assert _custom(answer) == [("x-first", "1"), ("x-trace-bin", "0001"), ("x-last", "2")]
        assert answer.authorization == (f"Bearer {TOKEN}",)


@pytest.mark.parametrize("kind", KINDS)
def test_replaces_caller_authorization(flavour: Flavour, echo: str, kind: Kind) -> None:
    metadata = (
        ("x-first", "1"),
        ("authorization", "Bearer old"),
        ("x-trace-bin", b"\x00\x01"),
        ("x-last", "2"),
    )
    channel = flavour.channel(echo, flavour.static(TOKEN))
    for answer in channel.call(kind, metadata=metadata):
        assert answer.authorization == (f"Bearer {TOKEN}",)
        assert _custom(answer) == [("x-first", "1"), ("x-trace-bin", "0001"), ("x-last", "2")]


def test_replaces_authorization_in_any_case(flavour: Flavour, echo: str) -> None:
    # gRPC itself refuses upper-case keys ("Invalid metadata"); the interceptor drops them.
    channel = flavour.channel(echo, flavour.static(TOKEN))
    (answer,) = channel.call(metadata=[("Authorization", "Bearer old")])
    assert answer.authorization == (f"Bearer {TOKEN}",)


def test_sync_future_calls_carry_the_token() -> None:
    flavour = Flavour("sync")
    try:
        channel = flavour.channel(flavour.serve(Echo()), flavour.static(TOKEN))
        future = channel.raw.unary_unary("/bearer_grpc.testing.Echo/Unary").future(b"x", timeout=10)
        assert Answer.parse(future.result()).authorization == (f"Bearer {TOKEN}",)
    finally:
        flavour.close()


@pytest.mark.parametrize("kind", KINDS)
def test_aio_metadata_object_is_kept_and_not_changed(kind: Kind) -> None:
    metadata = grpc.aio.Metadata(("x-a", "1"), ("authorization", "Bearer old"), ("x-b", "2"))

    async def main() -> list[Answer]:
        interceptor = bearer_grpc.aio.BearerClientInterceptor(bearer_grpc.aio.StaticToken(TOKEN))
        async with (
            serve_aio([Echo().aio_handler()]) as target,
            grpc.aio.insecure_channel(target, interceptors=interceptor) as channel,
        ):
            return await call_aio(channel, kind, metadata=metadata)

    for answer in asyncio.run(main()):
        assert answer.authorization == (f"Bearer {TOKEN}",)
        assert _custom(answer) == [("x-a", "1"), ("x-b", "2")]
    assert list(metadata) == [("x-a", "1"), ("authorization", "Bearer old"), ("x-b", "2")]


def test_aio_interceptor_unpacks_into_an_interceptor_list() -> None:
    bearer = bearer_grpc.aio.BearerClientInterceptor(bearer_grpc.aio.StaticToken(TOKEN))

    async def main() -> None:
        async with serve_aio([Echo().aio_handler()]) as target:
            with pytest.raises(ValueError, match="must be"):  # grpc.aio refuses it
                grpc.aio.insecure_channel(target, interceptors=[bearer])  # type: ignore[list-item]
            async with grpc.aio.insecure_channel(target, interceptors=[*bearer]) as channel:
                for kind in KINDS:
                    for answer in await call_aio(channel, kind):
                        assert answer.authorization == (f"Bearer {TOKEN}",)

    asyncio.run(main())


# -- retry on a stale token ---------------------------------------------------------------


@pytest.mark.parametrize("error", [TokenRevoked(), TokenExpired()], ids=["revoked", "expired"])
def test_unary_unary_stale_token_retried_with_fresh_one(
    flavour: Flavour,
    service: RunningService,
    own_client: NewClient,
    spy: IssueSpy,
    gate: Gate,
    echo: str,
    error: AuthError,
) -> None:
    gate.reject, gate.reject_with = reject_first_token(), error
    channel = flavour.channel(echo, flavour.credentials(service, own_client, audience="orders"))
    (answer,) = channel.call()
    first, second = gate.tokens()
    assert first != second
    assert answer.authorization == (f"Bearer {second}",)
    assert spy.count == 2


def test_unary_unary_retried_only_once(
    flavour: Flavour,
    service: RunningService,
    own_client: NewClient,
    spy: IssueSpy,
    gate: Gate,
    echo: str,
) -> None:
    gate.reject = reject_all
    channel = flavour.channel(echo, flavour.credentials(service, own_client, audience="orders"))
    with pytest.raises(grpc.RpcError) as info:
        channel.call()
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert len(gate.seen) == 2
    assert spy.count == 2


def test_sync_with_call_returns_the_retried_call(
    shared_service: RunningService, unique_client: NewClient
) -> None:
    flavour, gate = Flavour("sync"), Gate(reject=reject_first_token())
    try:
        tokens = flavour.credentials(shared_service, unique_client, audience="orders")
        channel = flavour.channel(flavour.serve(Echo(refuse=gate)), tokens)
        unary = channel.raw.unary_unary("/bearer_grpc.testing.Echo/Unary")
        _, call = unary.with_call(b"x", timeout=10)
        assert call.code() is grpc.StatusCode.OK
        assert len(gate.seen) == 2
    finally:
        flavour.close()


def test_aio_awaited_call_reports_the_retried_status(
    shared_service: RunningService, unique_client: NewClient
) -> None:
    gate = Gate(reject=reject_first_token())

    async def main() -> None:
        async with (
            bearer_grpc.aio.ClientCredentials(
                shared_service.target, unique_client.client_id, unique_client.client_secret
            ) as tokens,
            serve_aio([Echo(refuse=gate).aio_handler()]) as target,
        ):
            interceptor = bearer_grpc.aio.BearerClientInterceptor(tokens)
            async with grpc.aio.insecure_channel(target, interceptors=interceptor) as channel:
                call = channel.unary_unary("/bearer_grpc.testing.Echo/Unary")(b"x", timeout=10)
                await call
                assert await call.code() is grpc.StatusCode.OK

    asyncio.run(main())
    assert len(gate.seen) == 2


def test_unary_unary_invalid_token_not_retried(
    flavour: Flavour,
    shared_service: RunningService,
    unique_client: NewClient,
    gate: Gate,
    echo: str,
) -> None:
    gate.reject, gate.reject_with = reject_all, TokenInvalid()
    tokens = flavour.credentials(shared_service, unique_client, audience="orders")
    channel = flavour.channel(echo, tokens)
    with pytest.raises(grpc.RpcError):
        channel.call()
    assert len(gate.seen) == 1


def test_static_token_not_resent(flavour: Flavour, gate: Gate, echo: str) -> None:
    # invalidate() cannot make a static token fresh: the same token is not sent twice.
    gate.reject = reject_all
    channel = flavour.channel(echo, flavour.static(TOKEN))
    with pytest.raises(grpc.RpcError) as info:
        channel.call()
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert len(gate.seen) == 1


@pytest.mark.parametrize("kind", STREAMS)
def test_streams_not_retried_but_their_stale_token_is_dropped(
    flavour: Flavour,
    service: RunningService,
    own_client: NewClient,
    spy: IssueSpy,
    gate: Gate,
    echo: str,
    kind: Kind,
) -> None:
    gate.reject = reject_first_token()
    tokens = flavour.credentials(service, own_client, audience="orders")
    channel = flavour.channel(echo, tokens)
    with pytest.raises(grpc.RpcError) as info:
        channel.call(kind)
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert len(gate.seen) == 1  # not retried
    stale = gate.tokens()[0]
    wait_until(lambda: tokens.token() != stale)  # invalidated when the call ended
    channel.call(kind)  # the next call carries the fresh token
    first, second = gate.tokens()
    assert first == stale != second
    assert spy.count == 2


def test_token_failure_is_the_calls_status(flavour: Flavour, gate: Gate, echo: str) -> None:
    failure = grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, None, None, details="down")

    class Unreachable:
        def token(self) -> Any:
            if flavour.name == "sync":
                raise bearer_grpc.TokenRequestError("tokens:1", failure)
            return self._token_aio()

        async def _token_aio(self) -> str:
            raise bearer_grpc.aio.TokenRequestError("tokens:1", failure)

        def invalidate(self, token: str) -> None:
            pass

    channel = flavour.channel(echo, Unreachable())
    for kind in KINDS:
        with pytest.raises(grpc.RpcError) as info:
            channel.call(kind)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "token service at tokens:1" in (info.value.details() or "")
    assert gate.seen == []


# -- call credentials ---------------------------------------------------------------------


def _local_echo(flavour: Flavour, gate: Gate) -> str:
    return flavour.serve(Echo(refuse=gate), credentials=grpc.local_server_credentials())


@pytest.mark.parametrize("kind", KINDS)
def test_call_credentials_over_local_credentials(flavour: Flavour, gate: Gate, kind: Kind) -> None:
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(),
        bearer_grpc.bearer_call_credentials(bearer_grpc.StaticToken(TOKEN)),
    )
    channel = flavour.secure_channel(_local_echo(flavour, gate), credentials)
    for answer in channel.call(kind, metadata=(("x-a", "1"),)):
        assert answer.authorization == (f"Bearer {TOKEN}",)
        assert ("x-a", "1") in answer.metadata


@pytest.mark.parametrize("kind", KINDS)
def test_aio_call_credentials_take_tokens_from_an_asyncio_source(kind: Kind) -> None:
    async def main() -> list[Answer]:
        credentials = grpc.composite_channel_credentials(
            grpc.local_channel_credentials(),
            bearer_grpc.aio.bearer_call_credentials(bearer_grpc.aio.StaticToken(TOKEN)),
        )
        local = grpc.local_server_credentials()
        async with (
            serve_aio([Echo().aio_handler()], credentials=local) as target,
            grpc.aio.secure_channel(target, credentials) as channel,
        ):
            return await call_aio(channel, kind)

    for answer in asyncio.run(main()):
        assert answer.authorization == (f"Bearer {TOKEN}",)


def test_aio_call_credentials_need_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        bearer_grpc.aio.bearer_call_credentials(bearer_grpc.aio.StaticToken(TOKEN))


def test_call_credentials_with_client_credentials(
    service: RunningService, own_client: NewClient, spy: IssueSpy, gate: Gate
) -> None:
    flavour = Flavour("sync")
    try:
        tokens = flavour.credentials(service, own_client)
        credentials = grpc.composite_channel_credentials(
            grpc.local_channel_credentials(), bearer_grpc.bearer_call_credentials(tokens.raw)
        )
        channel = flavour.secure_channel(_local_echo(flavour, gate), credentials)
        for _ in range(3):
            (answer,) = channel.call()
            assert answer.authorization == (f"Bearer {tokens.token()}",)
    finally:
        flavour.close()
    assert spy.count == 1


def test_call_credentials_report_token_failure(gate: Gate) -> None:
    class Broken:
        def token(self) -> str:
            raise bearer_grpc.TokenInvalid()

        def invalidate(self, token: str) -> None:
            pass

    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(), bearer_grpc.bearer_call_credentials(Broken())
    )
    flavour = Flavour("sync")
    try:
        channel = flavour.secure_channel(_local_echo(flavour, gate), credentials)
        with pytest.raises(grpc.RpcError) as info:
            channel.call()
    finally:
        flavour.close()
    # gRPC turns any plugin error into UNAVAILABLE, with the error's text in the details.
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "invalid token" in (info.value.details() or "")
    assert gate.seen == []
