"""The client side for sync channels: the client interceptor and call credentials.

- :class:`BearerClientInterceptor` puts ``authorization: Bearer <token>`` on every call
  of a ``grpc.intercept_channel`` channel and retries a unary call once when the server
  says the token expired or was revoked.
- :func:`bearer_call_credentials` does the same as ``grpc.CallCredentials`` (no retry),
  for TLS and local channel credentials.

Both take a token source (:mod:`bearer_grpc._client.sources`). The metadata rewrite and
the retry test are shared with the asyncio flavour (:mod:`bearer_grpc._client.metadata`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from bearer_grpc._client.metadata import Metadata, is_stale_token, with_bearer
from bearer_grpc._client.sources import TokenSource
from bearer_grpc.core.wire import AUTHORIZATION

if TYPE_CHECKING:
    from grpc import _CallFuture, _CallIterator

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")


def _stale_token(call: grpc.Call) -> bool:
    if call.code() is not grpc.StatusCode.UNAUTHENTICATED:
        return False
    try:
        return is_stale_token(rpc_status.from_call(call))
    except (ValueError, DecodeError):  # details that contradict the status: not ours
        return False


def _invalidate_if_stale(source: TokenSource, call: Any, token: str) -> None:
    """Once ``call`` ends, invalidate ``token`` if the server called it stale.

    Used for calls that are not retried: a stream, or a unary call still running when
    intercepted.
    """

    def done(finished: Any) -> None:
        if _stale_token(finished):
            source.invalidate(token)

    add_done_callback = getattr(call, "add_done_callback", None)
    if add_done_callback is not None:
        add_done_callback(done)


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    """``grpc.ClientCallDetails`` has no constructor; this is the same six fields."""

    method: str
    timeout: float | None
    metadata: Metadata | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


def _details_with(details: grpc.ClientCallDetails, token: str) -> _CallDetails:
    return _CallDetails(
        method=details.method,
        timeout=details.timeout,
        metadata=with_bearer(details.metadata, token),
        credentials=details.credentials,
        wait_for_ready=getattr(details, "wait_for_ready", None),
        compression=getattr(details, "compression", None),
    )


class BearerClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Sends ``authorization: Bearer <token>`` with every call (for ``grpc.intercept_channel``).

    Only the ``authorization`` entry is set or replaced (never duplicated); other
    metadata stays as given, in order. A unary-unary call rejected UNAUTHENTICATED with
    ``ErrorInfo`` reason ``TOKEN_EXPIRED`` or ``TOKEN_REVOKED`` is sent once more, after
    ``token_source.invalidate(old)``, if the source then has a different token. Streams
    are never retried (their requests may be consumed), nor are ``.future()`` calls
    still running when the interceptor returns (retrying would block the caller); when
    such a call ends rejected that way, its token is invalidated all the same, so the
    next call carries a fresh one instead of failing until the token's renewal.

    Args:
        token_source: Where tokens come from, e.g. :class:`ClientCredentials`.
    """

    def __init__(self, token_source: TokenSource) -> None:
        self._source = token_source

    def __repr__(self) -> str:
        return f"BearerClientInterceptor({self._source!r})"

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, _Request], _CallFuture[_Response]],
        client_call_details: grpc.ClientCallDetails,
        request: _Request,
    ) -> _CallFuture[_Response]:
        """Send the call with the token; retry once if it was stale (see the class)."""
        token = self._source.token()
        outcome = continuation(_details_with(client_call_details, token), request)
        if not outcome.done():
            _invalidate_if_stale(self._source, outcome, token)
            return outcome
        if not _stale_token(outcome):
            return outcome
        self._source.invalidate(token)
        fresh = self._source.token()
        if fresh == token:
            return outcome
        return continuation(_details_with(client_call_details, fresh), request)

    def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, _Request], _CallIterator[_Response]],
        client_call_details: grpc.ClientCallDetails,
        request: _Request,
    ) -> _CallIterator[_Response]:
        """Send the call with the token (see the class for a stale one)."""
        token = self._source.token()
        call = continuation(_details_with(client_call_details, token), request)
        _invalidate_if_stale(self._source, call, token)
        return call

    def intercept_stream_unary(
        self,
        continuation: Callable[
            [grpc.ClientCallDetails, Iterator[_Request]], _CallFuture[_Response]
        ],
        client_call_details: grpc.ClientCallDetails,
        request_iterator: Iterator[_Request],
    ) -> _CallFuture[_Response]:
        """Send the call with the token (see the class for a stale one)."""
        token = self._source.token()
        call = continuation(_details_with(client_call_details, token), request_iterator)
        _invalidate_if_stale(self._source, call, token)
        return call

    def intercept_stream_stream(
        self,
        continuation: Callable[
            [grpc.ClientCallDetails, Iterator[_Request]], _CallIterator[_Response]
        ],
        client_call_details: grpc.ClientCallDetails,
        request_iterator: Iterator[_Request],
    ) -> _CallIterator[_Response]:
        """Send the call with the token (see the class for a stale one)."""
        token = self._source.token()
        call = continuation(_details_with(client_call_details, token), request_iterator)
        _invalidate_if_stale(self._source, call, token)
        return call


class _MetadataPlugin(grpc.AuthMetadataPlugin):
    """Puts the source's token on a call; gRPC runs it on a thread of its own."""

    def __init__(self, token_source: TokenSource) -> None:
        self._source = token_source

    def __repr__(self) -> str:
        return f"_MetadataPlugin({self._source!r})"

    def __call__(
        self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback
    ) -> None:
        try:
            token = self._source.token()
        except Exception as err:  # reported to gRPC, which fails the call with it
            callback((), err)
            return
        callback(((AUTHORIZATION, f"Bearer {token}"),), None)


def bearer_call_credentials(token_source: TokenSource) -> grpc.CallCredentials:
    """Call credentials that send ``authorization: Bearer <token>`` with every call.

    Compose them onto TLS or local channel credentials with
    ``grpc.composite_channel_credentials``; gRPC refuses call credentials on plaintext
    channels (client-side UNAUTHENTICATED, nothing reaches the server). They work for
    ``grpc`` and ``grpc.aio`` channels alike. A cached token is handed over without any
    network wait, so they cost what ``grpc.access_token_call_credentials`` costs: gRPC
    runs every plugin call on a fresh thread. Hot clients are faster with
    :class:`BearerClientInterceptor`, which also retries stale tokens; these do not.

    Args:
        token_source: Where tokens come from (a sync source, also on aio channels).

    Returns:
        Call credentials for ``composite_channel_credentials`` or a call's
        ``credentials=`` argument.
    """
    return grpc.metadata_call_credentials(_MetadataPlugin(token_source), name="bearer")
