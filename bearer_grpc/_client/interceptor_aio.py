"""The client side for ``grpc.aio`` channels: the interceptor and the call credentials.

Those of :mod:`bearer_grpc._client.interceptor`, asyncio flavoured.

Both take an asyncio token source (:mod:`bearer_grpc._client.sources_aio`). The metadata
rewrite and the retry test are shared (:mod:`bearer_grpc._client.metadata`).
:class:`BearerClientInterceptor` is a sequence of four single-kind interceptors (see
there why).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import TypeVar, overload

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from bearer_grpc._client.common import DEFAULT_TIMEOUT
from bearer_grpc._client.metadata import is_stale_token, with_bearer
from bearer_grpc._client.sources_aio import TokenSource
from bearer_grpc.core.wire import AUTHORIZATION

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
_Requests = AsyncIterable[_Request] | Iterable[_Request]


def _details_with(details: grpc.aio.ClientCallDetails, token: str) -> grpc.aio.ClientCallDetails:
    return grpc.aio.ClientCallDetails(
        details.method,
        details.timeout,
        grpc.aio.Metadata(*with_bearer(details.metadata, token)),
        details.credentials,
        details.wait_for_ready,
    )


async def _stale_token(call: grpc.aio.Call) -> bool:
    try:
        code = await call.code()
    except asyncio.CancelledError:
        call.cancel()  # our caller gave up: so does the call
        raise
    if code is not grpc.StatusCode.UNAUTHENTICATED:
        return False
    try:
        return is_stale_token(await rpc_status.aio.from_call(call))
    except (ValueError, DecodeError):  # details that contradict the status: not ours
        return False


_checks: set[asyncio.Task[None]] = set()  # running stale checks (tasks need a reference)


def _invalidate_if_stale(source: TokenSource, call: grpc.aio.Call, token: str) -> None:
    """Once the stream ``call`` ends, invalidate ``token`` if the server called it stale.

    Streams are not retried, but the next call should not carry it again.
    """

    async def check() -> None:
        if await _stale_token(call):
            source.invalidate(token)

    def done(_call: object) -> None:
        task = asyncio.get_running_loop().create_task(check())
        _checks.add(task)
        task.add_done_callback(_checks.discard)

    call.add_done_callback(done)


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token_source: TokenSource) -> None:
        self._source = token_source

    async def intercept_unary_unary(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, _Request],
            Awaitable[grpc.aio.UnaryUnaryCall[_Request, _Response]],
        ],
        client_call_details: grpc.aio.ClientCallDetails,
        request: _Request,
    ) -> grpc.aio.UnaryUnaryCall[_Request, _Response]:
        """Send the call with the token; retry once if it was stale."""
        token = await self._source.token()
        call = await continuation(_details_with(client_call_details, token), request)
        if not await _stale_token(call):
            return call
        self._source.invalidate(token)
        fresh = await self._source.token()
        if fresh == token:
            return call
        return await continuation(_details_with(client_call_details, fresh), request)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, token_source: TokenSource) -> None:
        self._source = token_source

    async def intercept_unary_stream(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, _Request],
            Awaitable[grpc.aio.UnaryStreamCall[_Request, _Response]],
        ],
        client_call_details: grpc.aio.ClientCallDetails,
        request: _Request,
    ) -> AsyncIterator[_Response] | grpc.aio.UnaryStreamCall[_Request, _Response]:
        """Send the call with the token (invalidated if the server calls it stale)."""
        token = await self._source.token()
        call = await continuation(_details_with(client_call_details, token), request)
        _invalidate_if_stale(self._source, call, token)
        return call


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    def __init__(self, token_source: TokenSource) -> None:
        self._source = token_source

    async def intercept_stream_unary(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, _Requests[_Request]],
            Awaitable[grpc.aio.StreamUnaryCall[_Request, _Response]],
        ],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: _Requests[_Request],
    ) -> grpc.aio.StreamUnaryCall[_Request, _Response]:
        """Send the call with the token (invalidated if the server calls it stale)."""
        token = await self._source.token()
        call = await continuation(_details_with(client_call_details, token), request_iterator)
        _invalidate_if_stale(self._source, call, token)
        return call


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, token_source: TokenSource) -> None:
        self._source = token_source

    async def intercept_stream_stream(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, _Requests[_Request]],
            Awaitable[grpc.aio.StreamStreamCall[_Request, _Response]],
        ],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: _Requests[_Request],
    ) -> AsyncIterator[_Response] | grpc.aio.StreamStreamCall[_Request, _Response]:
        """Send the call with the token (invalidated if the server calls it stale)."""
        token = await self._source.token()
        call = await continuation(_details_with(client_call_details, token), request_iterator)
        _invalidate_if_stale(self._source, call, token)
        return call


class BearerClientInterceptor(Sequence[grpc.aio.ClientInterceptor]):
    """Sends ``authorization: Bearer <token>`` with every call of a ``grpc.aio`` channel.

    Pass it *as* the interceptor list, or unpack it into one::

        bearer = bearer_grpc.aio.BearerClientInterceptor(tokens)
        channel = grpc.aio.insecure_channel(target, interceptors=bearer)
        channel = grpc.aio.insecure_channel(target, interceptors=[*bearer, other])

    It is a sequence of four interceptors, one per call kind, sharing ``token_source``:
    ``grpc.aio`` files each interceptor object under one call kind only (an
    ``if``/``elif`` chain; grpc/grpc#31442), so a single object implementing all four
    interfaces would never see streaming calls. ``interceptors=[bearer]`` is refused by
    ``grpc.aio`` with a ValueError instead of silently leaving streams without a token.

    Metadata may be given as tuples or ``grpc.aio.Metadata`` (which is not changed);
    only the ``authorization`` entry is set or replaced, never duplicated. A unary-unary
    call rejected UNAUTHENTICATED with ``ErrorInfo`` reason ``TOKEN_EXPIRED`` or
    ``TOKEN_REVOKED`` is sent once more, after ``token_source.invalidate(old)``, if the
    source then has a different token; streams are never retried, but a stream rejected
    that way invalidates its token too, so the next call carries a fresh one.

    Args:
        token_source: Where tokens come from, e.g. :class:`ClientCredentials`.
    """

    def __init__(self, token_source: TokenSource) -> None:
        self._source = token_source
        self._parts: tuple[grpc.aio.ClientInterceptor, ...] = (
            _UnaryUnary(token_source),
            _UnaryStream(token_source),
            _StreamUnary(token_source),
            _StreamStream(token_source),
        )

    def __repr__(self) -> str:
        return f"BearerClientInterceptor({self._source!r})"

    @overload
    def __getitem__(self, index: int) -> grpc.aio.ClientInterceptor: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[grpc.aio.ClientInterceptor]: ...
    def __getitem__(
        self, index: int | slice
    ) -> grpc.aio.ClientInterceptor | Sequence[grpc.aio.ClientInterceptor]:
        """The interceptor for one call kind (or a slice of them).

        The kinds are in the order unary-unary, unary-stream, stream-unary, stream-stream.
        """
        return self._parts[index]

    def __len__(self) -> int:
        return len(self._parts)


class _MetadataPlugin(grpc.AuthMetadataPlugin):
    """Puts an asyncio source's token on a call.

    gRPC runs plugins on threads of its own, so the token is awaited on the source's event
    loop and handed back here.
    """

    def __init__(
        self, token_source: TokenSource, loop: asyncio.AbstractEventLoop, timeout: float
    ) -> None:
        self._source = token_source
        self._loop = loop
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"_MetadataPlugin({self._source!r})"

    def __call__(
        self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback
    ) -> None:
        try:
            future = asyncio.run_coroutine_threadsafe(self._source.token(), self._loop)
            token = future.result(self._timeout)
        except Exception as err:  # reported to gRPC, which fails the call with it
            callback((), err)
            return
        callback(((AUTHORIZATION, f"Bearer {token}"),), None)


def bearer_call_credentials(
    token_source: TokenSource, *, timeout: float = DEFAULT_TIMEOUT
) -> grpc.CallCredentials:
    """Call credentials that send ``authorization: Bearer <token>`` from an asyncio source.

    Create them inside the running event loop that the source and the channels using them
    live on. Compose them onto TLS or local channel credentials with
    ``grpc.composite_channel_credentials``; gRPC refuses call credentials on plaintext
    channels. :class:`BearerClientInterceptor` is faster for hot clients and also retries
    stale tokens; these do not.

    Args:
        token_source: Where tokens come from (``ClientCredentials``, ``StaticToken``).
        timeout: Longest a call waits for a token, seconds.

    Returns:
        Call credentials for ``composite_channel_credentials`` or a call's
        ``credentials=`` argument.

    Raises:
        RuntimeError: Not called inside a running event loop.
    """
    plugin = _MetadataPlugin(token_source, asyncio.get_running_loop(), timeout)
    return grpc.metadata_call_credentials(plugin, name="bearer")
