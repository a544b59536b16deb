"""The one small service these tests protect: ``/issuers.Echo/*``, one method per RPC
kind, answering ``issuer|subject|scopes`` of ``current_principal()`` (raw bytes, no
protos). Sync and asyncio handlers; kept here alone so it can move to the shipped kit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc

from bearer_grpc import current_principal

SERVICE = "issuers.Echo"
KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


def _who() -> bytes:
    p = current_principal()
    return f"{p.issuer}|{p.subject}|{' '.join(sorted(p.scopes))}".encode()


def _sync_handlers() -> dict[str, Any]:
    def unary_unary(request: bytes, context: Any) -> bytes:
        return _who()

    def unary_stream(request: bytes, context: Any) -> Iterator[bytes]:
        yield _who()

    def stream_unary(requests: Iterator[bytes], context: Any) -> bytes:
        for _ in requests:
            pass
        return _who()

    def stream_stream(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        for _ in requests:
            yield _who()

    return {"unary_unary": unary_unary, "unary_stream": unary_stream,
            "stream_unary": stream_unary, "stream_stream": stream_stream}  # fmt: skip


def _aio_handlers() -> dict[str, Any]:
    async def unary_unary(request: bytes, context: Any) -> bytes:
        return _who()

    async def unary_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        yield _who()

    async def stream_unary(requests: AsyncIterator[bytes], context: Any) -> bytes:
        async for _ in requests:
            pass
        return _who()

    async def stream_stream(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for _ in requests:
            yield _who()

    return {"unary_unary": unary_unary, "unary_stream": unary_stream,
            "stream_unary": stream_unary, "stream_stream": stream_stream}  # fmt: skip


_FACTORIES = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def handler(*, aio: bool) -> grpc.GenericRpcHandler:
    """The Echo service's generic handler (sync or asyncio behaviours)."""
    behaviours = _aio_handlers() if aio else _sync_handlers()
    return grpc.method_handlers_generic_handler(
        SERVICE, {kind: _FACTORIES[kind](behaviours[kind]) for kind in KINDS}
    )


def call(channel: grpc.Channel, kind: str, token: str | None) -> bytes:
    """Call the ``kind`` method once (streams: one message) and return the answer."""
    metadata = [("authorization", f"Bearer {token}")] if token is not None else []
    method = f"/{SERVICE}/{kind}"
    if kind == "unary_unary":
        answer: bytes = channel.unary_unary(method)(b"x", metadata=metadata, timeout=10)
    elif kind == "unary_stream":
        (answer,) = channel.unary_stream(method)(b"x", metadata=metadata, timeout=10)
    elif kind == "stream_unary":
        answer = channel.stream_unary(method)(iter([b"x"]), metadata=metadata, timeout=10)
    else:
        (answer,) = channel.stream_stream(method)(iter([b"x"]), metadata=metadata, timeout=10)
    return answer


def call_on(target: str, kind: str, token: str | None) -> bytes:
    """:func:`call` on a new channel to ``target`` (for callers in another thread)."""
    with grpc.insecure_channel(target) as channel:
        return call(channel, kind, token)
