"""The shared pieces: handler kinds kept, refusals parse nothing, aio needs async behaviours."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from bearer_grpc._server.routing import Pending, any_kind, behaviour_of, copy_thread_pool, same_kind
from bearer_grpc.testing import TestIssuer, bearer, path
from tests.harness import Protected, refusal
from tests.interceptors.support import TIMEOUT, alice

FACTORIES = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def _behaviour(request: Any, context: Any) -> Any:
    return request


def _deserialize(raw: bytes) -> str:
    return raw.decode()


def _serialize(value: str) -> bytes:
    return value.encode()


@pytest.mark.parametrize("kind", FACTORIES)
def test_same_kind_keeps_kind_and_serializers(kind: str) -> None:
    original = FACTORIES[kind](_behaviour, _deserialize, _serialize)

    def wrapped(request: Any, context: Any) -> Any:
        return request

    rebuilt = same_kind(original, wrapped)
    refusing = same_kind(original, wrapped, deserialize=False)

    for handler in (rebuilt, refusing):
        assert (handler.request_streaming, handler.response_streaming) == (
            original.request_streaming,
            original.response_streaming,
        )
        assert getattr(handler, kind) is wrapped
        assert behaviour_of(handler) is wrapped
    assert behaviour_of(original) is _behaviour
    assert (rebuilt.request_deserializer, rebuilt.response_serializer) == (_deserialize, _serialize)
    assert (refusing.request_deserializer, refusing.response_serializer) == (None, None)


def test_unknown_methods_get_a_handler_that_reads_nothing() -> None:
    handler = any_kind(_behaviour)
    assert handler.request_streaming and handler.response_streaming
    assert handler.request_deserializer is None


def test_thread_pool_of_a_behaviour_is_kept() -> None:
    def behaviour(request: Any, context: Any) -> Any:
        return request

    def wrapped(request: Any, context: Any) -> Any:
        return request

    pool = object()
    behaviour.experimental_thread_pool = pool  # type: ignore[attr-defined]
    assert copy_thread_pool(behaviour, wrapped).experimental_thread_pool is pool  # type: ignore[attr-defined]


def test_pending_hides_its_token() -> None:
    assert "secret" not in repr(Pending("secret-token", ()))


def test_aio_refuses_sync_behaviours_rather_than_skip_them(
    aio_server: Protected, issuer: TestIssuer
) -> None:
    aio_server.echo.reset()
    sync_unary = aio_server.channel.unary_unary(path("SyncUnary"))
    error = refusal(lambda: sync_unary(b"hi", metadata=bearer(alice(issuer)), timeout=TIMEOUT))
    assert error.code() == grpc.StatusCode.UNKNOWN
    assert aio_server.echo.calls == 0
