"""bearer_grpc.testing: the kit works end to end, sync and aio, with real servers."""

from __future__ import annotations

import asyncio

import grpc
import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc.testing import FrozenClock, TestIssuer, serve, serve_aio

METHOD = "/kit.v1.Who/Am"


def _who(request: bytes, context: grpc.ServicerContext) -> bytes:
    return bearer_grpc.current_principal().subject.encode()


async def _who_async(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return bearer_grpc.current_principal().subject.encode()


def _handlers(behaviour: object) -> list[grpc.GenericRpcHandler]:
    return [
        grpc.method_handlers_generic_handler(
            "kit.v1.Who",
            {"Am": grpc.unary_unary_rpc_method_handler(behaviour)},  # type: ignore[arg-type]
        )
    ]


def test_frozen_clock_moves_only_when_told() -> None:
    clock = FrozenClock(100.0)
    assert clock() == 100.0
    clock.advance(5)
    assert clock() == 105.0


def test_issuer_tokens_verify_until_the_frozen_clock_passes_expiry() -> None:
    clock = FrozenClock()
    issuer = TestIssuer(clock=clock)
    verifier = issuer.verifier(audience="orders", leeway=0)
    token = issuer.token(subject="svc", scopes=["orders.read"], audience="orders", lifetime=60)
    assert verifier.verify(token).scopes == {"orders.read"}
    clock.advance(60)
    with pytest.raises(bearer_grpc.TokenExpired):
        verifier.verify(issuer.token(audience="orders", lifetime=0))


def test_sync_server_on_a_free_port_sees_the_caller() -> None:
    issuer = TestIssuer()
    interceptor = bearer_grpc.BearerServerInterceptor(issuer.verifier(audience="kit"))
    with (
        serve(_handlers(_who), interceptors=[interceptor]) as target,
        grpc.insecure_channel(target) as channel,
    ):
        call = channel.unary_unary(METHOD)
        token = issuer.token(subject="alice", audience="kit")
        assert call(b"", metadata=[("authorization", f"Bearer {token}")], timeout=10) == b"alice"
        with pytest.raises(grpc.RpcError) as refused:
            call(b"", timeout=10)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_aio_server_on_a_free_port_sees_the_caller() -> None:
    issuer = TestIssuer()

    async def scenario() -> bytes:
        interceptor = bearer_grpc.aio.BearerServerInterceptor(issuer.aio_verifier(audience="kit"))
        async with serve_aio(_handlers(_who_async), interceptors=[interceptor]) as target:
            channel = grpc.aio.insecure_channel(target)
            token = issuer.token(subject="bob", audience="kit")
            metadata = (("authorization", f"Bearer {token}"),)
            reply: bytes = await channel.unary_unary(METHOD)(b"", metadata=metadata, timeout=10)
            await channel.close()
            return reply

    assert asyncio.run(scenario()) == b"bob"
