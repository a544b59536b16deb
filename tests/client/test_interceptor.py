"""``bearer_grpc.BearerClientInterceptor`` and ``bearer_call_credentials`` (sync grpc).

Every call goes over a real channel to the echo server, which reports the metadata it
received; tokens come from a real TokenService where the test needs fresh ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

import bearer_grpc
from bearer_grpc.core.errors import AuthError, TokenExpired, TokenInvalid, TokenRevoked
from bearer_grpc.service.admin import NewClient
from tests.client._echo import (
    KINDS,
    EchoServer,
    Gate,
    bearer_values,
    invoke,
    reject_all,
    reject_first_token,
    sync_echo_server,
)
from tests.client.conftest import IssueSpy
from tests.harness import RunningService, wait_until

TOKEN = "header.payload.signature"


@pytest.fixture
def channel(echo: EchoServer) -> Iterator[grpc.Channel]:
    """A channel to the echo server sending :data:`TOKEN`."""
    interceptor = bearer_grpc.BearerClientInterceptor(bearer_grpc.StaticToken(TOKEN))
    with grpc.insecure_channel(echo.target) as plain:
        yield grpc.intercept_channel(plain, interceptor)


@pytest.mark.parametrize("kind", KINDS)
def test_sends_bearer_token_once(channel: grpc.Channel, kind: str) -> None:
    for answer in invoke(channel, kind):
        assert bearer_values(answer) == [f"Bearer {TOKEN}"]


@pytest.mark.parametrize("kind", KINDS)
def test_keeps_other_metadata_in_order(channel: grpc.Channel, kind: str) -> None:
    metadata = (("x-first", "1"), ("x-trace-bin", b"\x00\x01"), ("x-last", "2"))
    for answer in invoke(channel, kind, metadata=metadata):
        custom = [(k, v) for k, v in answer if k.startswith("x-")]
        assert custom == [("x-first", "1"), ("x-trace-bin", "0001"), ("x-last", "2")]
        assert bearer_values(answer) == [f"Bearer {TOKEN}"]


@pytest.mark.parametrize("kind", KINDS)
def test_replaces_caller_authorization(channel: grpc.Channel, kind: str) -> None:
    metadata = [("x-a", "1"), ("authorization", "Bearer old"), ("x-b", "2")]
    for answer in invoke(channel, kind, metadata=metadata):
        assert bearer_values(answer) == [f"Bearer {TOKEN}"]
        assert [k for k, _ in answer if k.startswith("x-")] == ["x-a", "x-b"]


def test_replaces_authorization_in_any_case(channel: grpc.Channel) -> None:
    # gRPC itself refuses upper-case keys ("Invalid metadata"); the interceptor drops them.
    (answer,) = invoke(channel, "unary_unary", metadata=[("Authorization", "Bearer old")])
    assert bearer_values(answer) == [f"Bearer {TOKEN}"]


def test_future_calls_carry_the_token(channel: grpc.Channel) -> None:
    future = channel.unary_unary("/test.v1.Echo/Unary").future(b"x", timeout=10)
    assert b"Bearer " + TOKEN.encode() in future.result()


# -- retry on a stale token ---------------------------------------------------------------


def _credentials_channel(
    service: RunningService, client: NewClient, echo: EchoServer
) -> tuple[bearer_grpc.ClientCredentials, grpc.Channel]:
    tokens = bearer_grpc.ClientCredentials(
        service.target, client.client_id, client.client_secret, audience="orders"
    )
    plain = grpc.insecure_channel(echo.target)
    return tokens, grpc.intercept_channel(plain, bearer_grpc.BearerClientInterceptor(tokens))


@pytest.mark.parametrize("error", [TokenRevoked(), TokenExpired()], ids=["revoked", "expired"])
def test_unary_unary_stale_token_retried_with_fresh_one(
    service: RunningService, client: NewClient, spy: IssueSpy, error: AuthError
) -> None:
    gate = Gate(reject=reject_first_token(), reject_with=error)
    with sync_echo_server(gate) as echo:
        tokens, channel = _credentials_channel(service, client, echo)
        with tokens, channel:
            (answer,) = invoke(channel, "unary_unary")
    first, second = gate.tokens()
    assert first != second
    assert bearer_values(answer) == [f"Bearer {second}"]
    assert spy.count == 2


def test_unary_unary_retried_only_once(
    service: RunningService, client: NewClient, spy: IssueSpy
) -> None:
    with sync_echo_server(Gate(reject=reject_all)) as echo:
        tokens, channel = _credentials_channel(service, client, echo)
        with tokens, channel, pytest.raises(grpc.RpcError) as info:
            invoke(channel, "unary_unary")
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert len(echo.gate.seen) == 2
    assert spy.count == 2


def test_unary_unary_with_call_returns_retried_call(
    service: RunningService, client: NewClient
) -> None:
    with sync_echo_server(Gate(reject=reject_first_token())) as echo:
        tokens, channel = _credentials_channel(service, client, echo)
        with tokens, channel:
            _, call = channel.unary_unary("/test.v1.Echo/Unary").with_call(b"x", timeout=10)
        assert call.code() is grpc.StatusCode.OK
        assert len(echo.gate.seen) == 2


def test_unary_unary_invalid_token_not_retried(service: RunningService, client: NewClient) -> None:
    gate = Gate(reject=reject_all, reject_with=TokenInvalid())
    with sync_echo_server(gate) as echo:
        tokens, channel = _credentials_channel(service, client, echo)
        with tokens, channel, pytest.raises(grpc.RpcError):
            invoke(channel, "unary_unary")
        assert len(echo.gate.seen) == 1


def test_static_token_not_resent(echo: EchoServer) -> None:
    # invalidate() cannot make a static token fresh: the same token is not sent twice.
    echo.gate.reject = reject_all
    interceptor = bearer_grpc.BearerClientInterceptor(bearer_grpc.StaticToken(TOKEN))
    with (
        grpc.intercept_channel(grpc.insecure_channel(echo.target), interceptor) as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        invoke(channel, "unary_unary")
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert len(echo.gate.seen) == 1


@pytest.mark.parametrize("kind", ["unary_stream", "stream_unary", "stream_stream"])
def test_streams_not_retried_but_their_stale_token_is_dropped(
    service: RunningService, client: NewClient, spy: IssueSpy, kind: str
) -> None:
    with sync_echo_server(Gate(reject=reject_first_token())) as echo:
        tokens, channel = _credentials_channel(service, client, echo)
        with tokens, channel:
            with pytest.raises(grpc.RpcError) as info:
                invoke(channel, kind)
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert len(echo.gate.seen) == 1  # not retried
            stale = echo.gate.tokens()[0]
            wait_until(lambda: tokens.token() != stale)  # invalidated when the call ended
            invoke(channel, kind)  # the next call carries the fresh token
        first, second = echo.gate.tokens()
        assert first == stale != second
    assert spy.count == 2


# -- call credentials ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_call_credentials_over_local_credentials(echo: EchoServer, kind: str) -> None:
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(),
        bearer_grpc.bearer_call_credentials(bearer_grpc.StaticToken(TOKEN)),
    )
    with grpc.secure_channel(echo.local_target, credentials) as channel:
        for answer in invoke(channel, kind, metadata=(("x-a", "1"),)):
            assert bearer_values(answer) == [f"Bearer {TOKEN}"]
            assert ("x-a", "1") in answer


def test_call_credentials_with_client_credentials(
    service: RunningService, client: NewClient, echo: EchoServer, spy: IssueSpy
) -> None:
    with bearer_grpc.ClientCredentials(
        service.target, client.client_id, client.client_secret
    ) as tokens:
        credentials = grpc.composite_channel_credentials(
            grpc.local_channel_credentials(), bearer_grpc.bearer_call_credentials(tokens)
        )
        with grpc.secure_channel(echo.local_target, credentials) as channel:
            for _ in range(3):
                (answer,) = invoke(channel, "unary_unary")
                assert bearer_values(answer) == [f"Bearer {tokens.token()}"]
    assert spy.count == 1


def test_call_credentials_report_token_failure(echo: EchoServer) -> None:
    class Broken:
        def token(self) -> str:
            raise bearer_grpc.TokenInvalid()

        def invalidate(self, token: str) -> None:
            pass

    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(), bearer_grpc.bearer_call_credentials(Broken())
    )
    with (
        grpc.secure_channel(echo.local_target, credentials) as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        invoke(channel, "unary_unary")
    # gRPC turns any plugin error into UNAVAILABLE, with the error's text in the details.
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "invalid token" in (info.value.details() or "")
    assert echo.gate.seen == []
