"""A protected echo service for the client tests, sync (``grpc.server``) and aio.

``/test.v1.Echo/{Unary,ServerStream,ClientStream,BidiStream}`` take and return raw bytes
(identity serializers). Every answer is the JSON list of the call's metadata as the
server received it, so a test sees exactly which ``authorization`` entries arrived and
what happened to the others. A :class:`Gate` decides, per call, whether the token is
rejected (with the rich status a bearer_grpc server would send), and records what it saw.
Request streams are read to their end before the gate decides: a server that ends a call
while the aio client still writes can make the client report INTERNAL ("Failed
execute_batch") instead of the server's status, a race these tests do not examine.
It does not use bearer_grpc's server interceptor: the tests check the client alone.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc

from bearer_grpc._status import to_status
from bearer_grpc.core.errors import AuthError, TokenRevoked
from bearer_grpc.core.tokens import TokenVerifier

SERVICE = "test.v1.Echo"
KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
METHODS = {
    "unary_unary": f"/{SERVICE}/Unary",
    "unary_stream": f"/{SERVICE}/ServerStream",
    "stream_unary": f"/{SERVICE}/ClientStream",
    "stream_stream": f"/{SERVICE}/BidiStream",
}
TIMEOUT = 10.0
"""Deadline of every test call."""

Metadata = list[tuple[str, str]]


def bearer_values(metadata: Iterable[tuple[str, Any]]) -> list[str]:
    """Every ``authorization`` value in ``metadata``, in order."""
    return [value for key, value in metadata if key == "authorization"]


def token_of(metadata: Iterable[tuple[str, Any]]) -> str | None:
    """The token of the last ``authorization: Bearer`` entry, if any."""
    values = bearer_values(metadata)
    return values[-1].removeprefix("Bearer ") if values else None


def _encode(metadata: Iterable[tuple[str, str | bytes]]) -> bytes:
    entries = [[key, value.hex() if isinstance(value, bytes) else value] for key, value in metadata]
    return json.dumps(entries).encode()


def decode(answer: bytes) -> Metadata:
    """The metadata an echo answer reports."""
    return [(key, value) for key, value in json.loads(answer)]


@dataclass
class Gate:
    """What the echo server lets through, and what it saw.

    Attributes:
        reject: Reject a call carrying this token (None: no token) with ``reject_with``.
        reject_with: The error a rejected call ends with (TOKEN_REVOKED by default).
        verifier: When set, every token must pass ``authenticate(token, audience=...)``;
            failures are recorded in ``failures`` and rejected.
        audience: The audience the verifier requires.
        seen: The ``authorization`` values of every call, in arrival order.
        failures: ErrorInfo reasons of tokens the verifier refused.
    """

    reject: Callable[[str | None], bool] = lambda _token: False
    reject_with: AuthError = field(default_factory=TokenRevoked)
    verifier: TokenVerifier | None = None
    audience: str = "orders"
    seen: list[list[str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, metadata: Iterable[tuple[str, Any]]) -> grpc.Status | None:
        """The status to abort a call with, or None to serve it."""
        metadata = list(metadata)
        with self.lock:
            self.seen.append(bearer_values(metadata))
        token = token_of(metadata)
        if self.reject(token):
            return to_status(self.reject_with)
        if self.verifier is not None:
            try:
                self.verifier.authenticate(token or "", audience=self.audience)
            except AuthError as err:
                with self.lock:
                    self.failures.append(err.reason)
                return to_status(err)
        return None

    def tokens(self) -> list[str | None]:
        """The token of each call, in arrival order."""
        with self.lock:
            return [v[-1].removeprefix("Bearer ") if v else None for v in self.seen]


def reject_first_token() -> Callable[[str | None], bool]:
    """A ``Gate.reject`` that refuses the first token it sees (every time it comes)."""
    first: list[str | None] = []

    def reject(token: str | None) -> bool:
        if not first:
            first.append(token)
        return token == first[0]

    return reject


def reject_all(_token: str | None) -> bool:
    """A ``Gate.reject`` that refuses every call."""
    return True


# -- sync server -------------------------------------------------------------------------


def _sync_handlers(gate: Gate) -> grpc.GenericRpcHandler:
    def guard(context: grpc.ServicerContext) -> bytes:
        metadata = context.invocation_metadata()
        status = gate.check(metadata)
        if status is not None:
            context.abort_with_status(status)
        return _encode(metadata)

    def unary(_request: bytes, context: grpc.ServicerContext) -> bytes:
        return guard(context)

    def server_stream(_request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        answer = guard(context)
        yield answer
        yield answer

    def client_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        for _ in requests:
            pass
        return guard(context)

    def bidi_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        count = sum(1 for _ in requests)
        answer = guard(context)
        for _ in range(count):
            yield answer

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "BidiStream": grpc.stream_stream_rpc_method_handler(bidi_stream),
        },
    )


@dataclass
class EchoServer:
    """A running echo server: a plaintext target and a local-credentials target."""

    target: str
    local_target: str
    gate: Gate


@contextmanager
def sync_echo_server(gate: Gate | None = None) -> Iterator[EchoServer]:
    """A ``grpc.server`` echo service on 127.0.0.1 (plaintext and local credentials)."""
    gate = gate or Gate()
    server = grpc.server(ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((_sync_handlers(gate),))
    port = server.add_insecure_port("127.0.0.1:0")
    local_port = server.add_secure_port("127.0.0.1:0", grpc.local_server_credentials())
    server.start()
    try:
        yield EchoServer(f"127.0.0.1:{port}", f"127.0.0.1:{local_port}", gate)
    finally:
        server.stop(grace=None).wait(5)


def invoke(
    channel: grpc.Channel, kind: str, metadata: Any = None, requests: int = 2
) -> list[Metadata]:
    """Call the echo method of ``kind``; returns the metadata each answer reports."""
    method = METHODS[kind]
    if kind == "unary_unary":
        return [decode(channel.unary_unary(method)(b"x", metadata=metadata, timeout=TIMEOUT))]
    if kind == "unary_stream":
        call = channel.unary_stream(method)(b"x", metadata=metadata, timeout=TIMEOUT)
        return [decode(answer) for answer in call]
    stream = iter([b"x"] * requests)
    if kind == "stream_unary":
        return [decode(channel.stream_unary(method)(stream, metadata=metadata, timeout=TIMEOUT))]
    call = channel.stream_stream(method)(stream, metadata=metadata, timeout=TIMEOUT)
    return [decode(answer) for answer in call]


# -- aio server --------------------------------------------------------------------------

_AioContext = grpc.aio.ServicerContext[bytes, bytes]


def _aio_handlers(gate: Gate) -> grpc.GenericRpcHandler:
    async def guard(context: _AioContext) -> bytes:
        metadata = list(context.invocation_metadata() or ())
        status = gate.check(metadata)
        if status is not None:
            await context.abort_with_status(status)
        return _encode(metadata)

    async def unary(_request: bytes, context: _AioContext) -> bytes:
        return await guard(context)

    async def server_stream(_request: bytes, context: _AioContext) -> AsyncIterator[bytes]:
        answer = await guard(context)
        yield answer
        yield answer

    async def client_stream(requests: AsyncIterator[bytes], context: _AioContext) -> bytes:
        async for _ in requests:
            pass
        return await guard(context)

    async def bidi_stream(
        requests: AsyncIterator[bytes], context: _AioContext
    ) -> AsyncIterator[bytes]:
        count = len([_ async for _ in requests])
        answer = await guard(context)
        for _ in range(count):
            yield answer

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "BidiStream": grpc.stream_stream_rpc_method_handler(bidi_stream),
        },
    )


@asynccontextmanager
async def aio_echo_server(gate: Gate | None = None) -> AsyncIterator[EchoServer]:
    """A ``grpc.aio.server`` echo service on 127.0.0.1 (plaintext and local credentials)."""
    gate = gate or Gate()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_aio_handlers(gate),))
    port = server.add_insecure_port("127.0.0.1:0")
    local_port = server.add_secure_port("127.0.0.1:0", grpc.local_server_credentials())
    await server.start()
    try:
        yield EchoServer(f"127.0.0.1:{port}", f"127.0.0.1:{local_port}", gate)
    finally:
        await server.stop(grace=None)


async def ainvoke(
    channel: grpc.aio.Channel, kind: str, metadata: Any = None, requests: int = 2
) -> list[Metadata]:
    """Call the echo method of ``kind`` on an aio channel (see :func:`invoke`)."""
    method = METHODS[kind]
    if kind == "unary_unary":
        answer = await channel.unary_unary(method)(b"x", metadata=metadata, timeout=TIMEOUT)
        return [decode(answer)]
    if kind == "unary_stream":
        call = channel.unary_stream(method)(b"x", metadata=metadata, timeout=TIMEOUT)
        return [decode(answer) async for answer in call]
    stream = [b"x"] * requests
    if kind == "stream_unary":
        call = channel.stream_unary(method)(iter(stream), metadata=metadata, timeout=TIMEOUT)
        return [decode(await call)]
    bidi = channel.stream_stream(method)(iter(stream), metadata=metadata, timeout=TIMEOUT)
    return [decode(answer) async for answer in bidi]
