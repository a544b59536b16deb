"""Starting and stopping verifiers that follow a TokenService: thread, task, loops."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bearer_grpc import Verifier
from bearer_grpc import aio as bearer_aio
from tests.harness import LoopThread, RunningService, wait_until
from tests.verifier.conftest import FAST, closed_port_target, issue, revoke


def test_sync_with_block_stops_the_thread(service: RunningService) -> None:
    with Verifier.from_token_service(service.target, audience="orders") as verifier:
        assert verifier.local.keys is not None  # construction waited for the keys
        verifier.verify(issue(service))
        thread = verifier.thread
        assert thread is not None and thread.is_alive() and thread.daemon
    assert not thread.is_alive()


def test_sync_construction_returns_after_startup_timeout_and_keeps_trying() -> None:
    verifier = Verifier.from_token_service(
        closed_port_target(), audience="orders", startup_timeout=0.1, backoff=FAST
    )
    try:
        assert verifier.local.keys is None
        assert verifier.thread is not None and verifier.thread.is_alive()
    finally:
        verifier.close()
    assert not verifier.thread.is_alive()


def test_aio_verifier_built_before_the_server_starts_on_first_call(
    service: RunningService,
) -> None:
    verifier = bearer_aio.Verifier.from_token_service(service.target, audience="orders")
    assert verifier.task is None  # built outside any loop: nothing started yet
    interceptor = bearer_aio.BearerServerInterceptor(
        verifier, bearer_aio.Policy(default_public=False)
    )
    loop = LoopThread()

    async def serve() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server(interceptors=[interceptor])
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = loop.run(serve())
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            token = issue(service)
            metadata = (("authorization", f"Bearer {token}"),)
            assert check(health_pb2.HealthCheckRequest(), metadata=metadata, timeout=10)
            task = verifier.task
            assert task is not None and not task.done()  # started by the first call

            revoke(service, token)
            wait_until(lambda: _refused(check, metadata), timeout=1.0)
        loop.run(verifier.aclose())
        assert task.done()
    finally:
        loop.run(server.stop(0))
        loop.close()


def _refused(check: Any, metadata: Any) -> bool:
    try:
        check(health_pb2.HealthCheckRequest(), metadata=metadata, timeout=10)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        return True
    return False


def test_aio_async_with_starts_waits_for_keys_and_stops(service: RunningService) -> None:
    async def main() -> asyncio.Task[None] | None:
        verifier = bearer_aio.Verifier.from_token_service(service.target, audience="orders")
        async with verifier:
            assert verifier.local.keys is not None
            task = verifier.task
            assert task is not None and not task.done()
            await verifier.verify(issue(service))
        return task

    task = asyncio.run(main())
    assert task is not None and task.done()


def test_aio_sync_close_cancels_the_task(service: RunningService) -> None:
    async def main() -> None:
        verifier = bearer_aio.Verifier.from_token_service(service.target, audience="orders")
        await verifier.start()
        task = verifier.task
        assert task is not None
        verifier.close()
        await asyncio.wait([task], timeout=5)
        assert task.done()
        await verifier.aclose()  # idempotent, closes the channel too

    asyncio.run(main())


def test_aio_verifier_starts_again_on_a_new_loop(service: RunningService) -> None:
    verifier = bearer_aio.Verifier.from_token_service(service.target, audience="orders")

    async def use() -> asyncio.Task[None] | None:
        await verifier.verify(issue(service))
        return verifier.task

    first = asyncio.run(use())  # asyncio.run cancels the task when its loop ends
    second = asyncio.run(use())
    assert first is not None and first.done()
    assert second is not None and second is not first
    asyncio.run(verifier.aclose())


def test_aio_start_after_close_is_refused(service: RunningService) -> None:
    from bearer_grpc.core.errors import VerifierUnavailable

    async def main() -> None:
        verifier = bearer_aio.Verifier.from_token_service(service.target, audience="orders")
        await verifier.aclose()
        with pytest.raises(VerifierUnavailable):
            await verifier.start()

    asyncio.run(main())
