"""The service the interceptor tests protect: ``/test.v1.Echo/*``, without protos.

Requests and responses are raw bytes (no serializers). Every handler answers with what
``current_principal()`` says (``subject|scope scope``), so a test sees what the handler saw,
and counts its invocations, so a test sees whether it ran at all. The same service
exists as sync handlers (for ``grpc.server``) and async ones (for ``grpc.aio.server``);
the aio flavour covers both styles grpc.aio dispatches on (async generators and the
``context.read()``/``context.write()`` API).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2_grpc

from bearer_grpc import current_principal
from bearer_grpc.core.errors import NoPrincipal
from tests.harness import LoopThread

SERVICE = "test.v1.Echo"
KIND_METHODS = {
    "unary_unary": "Unary",
    "unary_stream": "ServerStream",
    "stream_unary": "ClientStream",
    "stream_stream": "BidiStream",
}


def path(method: str) -> str:
    """Full method name of an Echo method."""
    return f"/{SERVICE}/{method}"


def describe() -> bytes:
    """What the handler knows about its caller."""
    principal = current_principal()
    return f"{principal.subject}|{' '.join(sorted(principal.scopes))}".encode()


def nobody_or_describe() -> bytes:
    """``describe()``, or ``nobody`` where no caller is bound (public methods)."""
    try:
        return describe()
    except NoPrincipal:
        return b"nobody"


@dataclass
class Calls:
    """What the handlers of one server did, and a hook run between two responses.

    Attributes:
        count: Handler invocations.
        between: Run by ServerStream between its first and second response (e.g. to
            move the clock or revoke the token while the stream is open).
    """

    count: int = 0
    between: Callable[[], None] = lambda: None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self) -> None:
        """Count one handler invocation."""
        with self._lock:
            self.count += 1

    def reset(self) -> None:
        """Forget counts and hooks (between tests)."""
        with self._lock:
            self.count = 0
        self.between = lambda: None


def sync_handlers(calls: Calls) -> grpc.GenericRpcHandler:
    """The Echo service for ``grpc.server``."""

    def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
        calls.hit()
        return describe()

    def server_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        calls.hit()
        yield describe()
        calls.between()
        yield describe()

    def client_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        calls.hit()
        received = b",".join(requests)
        return describe() + b"|" + received

    def bidi(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        calls.hit()
        for request in requests:
            yield describe() + b"|" + request

    def public(request: bytes, context: grpc.ServicerContext) -> bytes:
        calls.hit()
        return b"public:" + nobody_or_describe()

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "BidiStream": grpc.stream_stream_rpc_method_handler(bidi),
            "BidiReadWrite": grpc.stream_stream_rpc_method_handler(bidi),
            "Public": grpc.unary_unary_rpc_method_handler(public),
            "Admin": grpc.unary_unary_rpc_method_handler(unary),
        },
    )


def aio_handlers(calls: Calls) -> grpc.GenericRpcHandler:
    """The Echo service for ``grpc.aio.server``."""

    async def unary(request: bytes, context: Any) -> bytes:
        calls.hit()
        return describe()

    async def server_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        calls.hit()
        yield describe()
        calls.between()
        yield describe()

    async def client_stream(requests: AsyncIterator[bytes], context: Any) -> bytes:
        calls.hit()
        received = [request async for request in requests]
        return describe() + b"|" + b",".join(received)

    async def bidi(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        calls.hit()
        async for request in requests:
            yield describe() + b"|" + request

    async def bidi_read_write(requests: AsyncIterator[bytes], context: Any) -> None:
        calls.hit()
        while (request := await context.read()) is not grpc.aio.EOF:
            await context.write(describe() + b"|" + request)

    async def public(request: bytes, context: Any) -> bytes:
        calls.hit()
        return b"public:" + nobody_or_describe()

    def sync_unary(request: bytes, context: Any) -> bytes:
        calls.hit()
        return describe()

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "BidiStream": grpc.stream_stream_rpc_method_handler(bidi),
            "BidiReadWrite": grpc.stream_stream_rpc_method_handler(bidi_read_write),
            "Public": grpc.unary_unary_rpc_method_handler(public),
            "Admin": grpc.unary_unary_rpc_method_handler(unary),
            "SyncUnary": grpc.unary_unary_rpc_method_handler(sync_unary),
        },
    )


@dataclass(frozen=True)
class Endpoints:
    """Where a running test server listens.

    Attributes:
        target: Plaintext port.
        local_target: Port opened with ``grpc.local_server_credentials()``.
    """

    target: str
    local_target: str


@contextmanager
def serve_sync(interceptor: grpc.ServerInterceptor, calls: Calls) -> Iterator[Endpoints]:
    """A ``grpc.server`` with the Echo and health services on 127.0.0.1, free ports."""
    server = grpc.server(ThreadPoolExecutor(max_workers=8), interceptors=[interceptor])
    server.add_generic_rpc_handlers((sync_handlers(calls),))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    local_port = server.add_secure_port("127.0.0.1:0", grpc.local_server_credentials())
    server.start()
    try:
        yield Endpoints(f"127.0.0.1:{port}", f"127.0.0.1:{local_port}")
    finally:
        server.stop(None).wait()


@contextmanager
def serve_aio(
    loop: LoopThread, interceptor: grpc.aio.ServerInterceptor, calls: Calls
) -> Iterator[Endpoints]:
    """A ``grpc.aio.server`` like :func:`serve_sync`, running on ``loop``."""

    async def start() -> tuple[grpc.aio.Server, int, int]:
        server = grpc.aio.server(interceptors=[interceptor])
        server.add_generic_rpc_handlers((aio_handlers(calls),))
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        local_port = server.add_secure_port("127.0.0.1:0", grpc.local_server_credentials())
        await server.start()
        return server, port, local_port

    server, port, local_port = loop.run(start())
    try:
        yield Endpoints(f"127.0.0.1:{port}", f"127.0.0.1:{local_port}")
    finally:
        loop.run(server.stop(None))
