"""The Echo service: all four RPC kinds, sync and aio, telling each caller what it saw.

It needs no proto: requests and responses are raw bytes, so any gRPC client can call it
with ``channel.unary_unary(path("Unary"))`` and no stubs. Each response is a small JSON
document (read it with :meth:`Answer.parse`, or call with :func:`call` / :func:`call_aio`,
which do) naming the principal ``current_principal()`` bound for the call, if any, and the
metadata the server received, ``authorization`` included::

    echo = Echo()
    interceptor = bearer_grpc.BearerServerInterceptor(issuer.verifier(audience="test"))
    with serve([echo.handler()], interceptors=[interceptor]) as target:
        with grpc.insecure_channel(target) as channel:
            (answer,) = call(channel, "unary_unary", metadata=bearer(issuer.token()))
    assert answer.subject == "test-client" and echo.calls == 1

The methods, by kind:

- ``Unary`` (unary_unary): one answer to the request.
- ``ServerStream`` (unary_stream): two answers to the request, with
  :attr:`Echo.between` run between them (to move a clock or revoke a token mid-stream).
- ``ClientStream`` (stream_unary): one answer to all the requests.
- ``BidiStream`` (stream_stream): one answer to each request, as it arrives.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import grpc
import grpc.aio

from bearer_grpc import NoPrincipal, current_principal
from bearer_grpc.core.tokens import IssuedToken

Kind = Literal["unary_unary", "unary_stream", "stream_unary", "stream_stream"]
"""An RPC kind, named as ``grpc.Channel``'s methods are."""
Metadata = Sequence[tuple[str, str | bytes]]
"""Call metadata as gRPC Python gives and takes it."""

SERVICE: Final = "bearer_grpc.testing.Echo"
"""The full service name."""
KINDS: Final[tuple[Kind, ...]] = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
"""The four RPC kinds, in this order everywhere."""
METHODS: Final[Mapping[Kind, str]] = {
    "unary_unary": "Unary",
    "unary_stream": "ServerStream",
    "stream_unary": "ClientStream",
    "stream_stream": "BidiStream",
}
"""The method of each kind."""
REQUESTS: Final = (b"a", b"b")
"""What :func:`call` sends by default (unary kinds send the first)."""
TIMEOUT: Final = 10.0
"""Deadline of a :func:`call`, in seconds."""


def path(method: str) -> str:
    """The full method name of an Echo method, e.g. ``/bearer_grpc.testing.Echo/Unary``."""
    return f"/{SERVICE}/{method}"


def bearer(token: str | IssuedToken) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying ``authorization: Bearer <token>``.

    Args:
        token: The token, or what ``TestIssuer.issue`` returned.
    """
    value = token if isinstance(token, str) else token.token
    return (("authorization", f"Bearer {value}"),)


@dataclass(frozen=True)
class Answer:
    """What the Echo handler saw, as one response reports it.

    Attributes:
        subject: ``current_principal().subject``, or None where no principal was bound
            (a public method, or a server without bearer_grpc's interceptor).
        issuer: ``current_principal().issuer``, or None.
        client_id: ``current_principal().client_id``, or None.
        scopes: ``current_principal().scopes``, sorted; empty without a principal.
        metadata: Every invocation metadata entry the server received, in order (values
            of binary ``-bin`` keys as hex).
        requests: The requests this response answers: the one request of a unary or
            server-streaming call, all of a client stream, one of a bidi stream.
    """

    subject: str | None
    issuer: str | None
    client_id: str | None
    scopes: tuple[str, ...]
    metadata: tuple[tuple[str, str], ...]
    requests: tuple[bytes, ...]

    @property
    def authorization(self) -> tuple[str, ...]:
        """Every ``authorization`` value the server received, in order."""
        return tuple(value for key, value in self.metadata if key == "authorization")

    def encode(self) -> bytes:
        """The response bytes (JSON)."""
        return json.dumps(
            {
                "subject": self.subject,
                "issuer": self.issuer,
                "client_id": self.client_id,
                "scopes": list(self.scopes),
                "metadata": [list(entry) for entry in self.metadata],
                "requests": [request.decode("latin-1") for request in self.requests],
            }
        ).encode()

    @classmethod
    def parse(cls, response: bytes) -> Answer:
        """Read a response of the Echo service.

        Args:
            response: The bytes a call returned.

        Returns:
            The answer.

        Raises:
            ValueError: ``response`` is not an Echo answer.
        """
        try:
            data = json.loads(response)
            return cls(
                subject=data["subject"],
                issuer=data["issuer"],
                client_id=data["client_id"],
                scopes=tuple(data["scopes"]),
                metadata=tuple((str(key), str(value)) for key, value in data["metadata"]),
                requests=tuple(text.encode("latin-1") for text in data["requests"]),
            )
        except (KeyError, TypeError, UnicodeError) as err:
            raise ValueError(f"not an Echo answer: {response[:80]!r}") from err


def _text(value: str | bytes) -> str:
    return value.hex() if isinstance(value, bytes) else value


def _answer(metadata: Metadata | None, requests: tuple[bytes, ...]) -> bytes:
    try:
        principal = current_principal()
    except NoPrincipal:
        subject = issuer = client_id = None
        scopes: tuple[str, ...] = ()
    else:
        subject, issuer, client_id = principal.subject, principal.issuer, principal.client_id
        scopes = tuple(sorted(principal.scopes))
    entries = tuple((key, _text(value)) for key, value in metadata or ())
    return Answer(subject, issuer, client_id, scopes, entries, requests).encode()


_AioContext = grpc.aio.ServicerContext[bytes, bytes]

Refuse = Callable[[Metadata], "grpc.Status | None"]
"""Decides whether the handler refuses a call, from its metadata: the status to end it
with, or None to answer it."""


class Echo:
    """The Echo service, its call counter and its hooks.

    One instance can serve several servers (sync and aio alike), which then share the counter.

    Args:
        methods: Method name to kind: the four of :data:`METHODS` by default. More names
            give more methods of a kind (e.g. ``{"Admin": "unary_unary"}`` for a policy
            test), served alongside the four.
        refuse: Asked at the start of every call (after counting it), with the call's
            metadata; a status ends the call with it, as a server that judges tokens in
            its handler would. A request stream is read to its end first, so a client
            sees the status rather than a half-closed stream.
        plain: Answer with the request bytes unchanged instead of an :class:`Answer`
            (a server stream sends the request twice, a client stream the requests
            joined): a cheap reply for load tests and benchmarks.

    Attributes:
        between: Run by ``ServerStream`` between its two responses (default: nothing).
    """

    def __init__(
        self,
        methods: Mapping[str, Kind] | None = None,
        *,
        refuse: Refuse | None = None,
        plain: bool = False,
    ) -> None:
        self.methods: dict[str, Kind] = {name: kind for kind, name in METHODS.items()}
        self.methods.update(methods or {})
        self.refuse = refuse
        self.plain = plain
        self.between: Callable[[], None] = lambda: None
        self._calls = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Echo(calls={self.calls}, methods={sorted(self.methods)})"

    @property
    def calls(self) -> int:
        """Handler invocations so far (a call refused before the handler is not one)."""
        with self._lock:
            return self._calls

    def reset(self) -> None:
        """Forget the count and the :attr:`between` hook (between tests)."""
        with self._lock:
            self._calls = 0
        self.between = lambda: None

    def enter(self, context: grpc.ServicerContext | _AioContext) -> grpc.Status | None:
        """Count a call and ask ``refuse``; the start of every Echo behaviour.

        With :meth:`reply`, it lets a handler of another shape (say, one using
        ``grpc.aio``'s ``context.read()``/``context.write()``) answer as the Echo does.

        Returns:
            The status to end the call with, or None to answer it.
        """
        with self._lock:
            self._calls += 1
        if self.refuse is None:
            return None
        metadata: Any = context.invocation_metadata()
        return self.refuse(metadata or ())

    def reply(self, context: grpc.ServicerContext | _AioContext, *requests: bytes) -> bytes:
        """The response to ``requests``: an :class:`Answer`, or the requests if plain."""
        if self.plain:
            return b"".join(requests)
        metadata: Any = context.invocation_metadata()
        return _answer(metadata, requests)

    def handler(self) -> grpc.GenericRpcHandler:
        """The service for a sync ``grpc.server``."""
        return self._generic(self._sync_behaviours())

    def aio_handler(self) -> grpc.GenericRpcHandler:
        """The service for a ``grpc.aio.server`` (``async def`` behaviours)."""
        return self._generic(self._aio_behaviours())

    def _generic(self, behaviours: Mapping[Kind, Any]) -> grpc.GenericRpcHandler:
        factories = {
            "unary_unary": grpc.unary_unary_rpc_method_handler,
            "unary_stream": grpc.unary_stream_rpc_method_handler,
            "stream_unary": grpc.stream_unary_rpc_method_handler,
            "stream_stream": grpc.stream_stream_rpc_method_handler,
        }
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {name: factories[kind](behaviours[kind]) for name, kind in self.methods.items()},
        )

    def _sync_behaviours(self) -> dict[Kind, Any]:
        def refused(context: grpc.ServicerContext, requests: Iterable[bytes] = ()) -> None:
            status = self.enter(context)
            if status is not None:
                for _ in requests:
                    pass
                context.abort_with_status(status)

        def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
            refused(context)
            return self.reply(context, request)

        def server_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
            refused(context)
            yield self.reply(context, request)
            self.between()
            yield self.reply(context, request)

        def client_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
            refused(context, requests)
            return self.reply(context, *requests)

        def bidi_stream(
            requests: Iterator[bytes], context: grpc.ServicerContext
        ) -> Iterator[bytes]:
            refused(context, requests)
            for request in requests:
                yield self.reply(context, request)

        return dict(zip(KINDS, (unary, server_stream, client_stream, bidi_stream), strict=True))

    def _aio_behaviours(self) -> dict[Kind, Any]:
        async def refused(
            context: _AioContext, requests: AsyncIterator[bytes] | None = None
        ) -> None:
            status = self.enter(context)
            if status is not None:
                if requests is not None:
                    async for _ in requests:
                        pass
                await context.abort_with_status(status)

        async def unary(request: bytes, context: _AioContext) -> bytes:
            await refused(context)
            return self.reply(context, request)

        async def server_stream(request: bytes, context: _AioContext) -> AsyncIterator[bytes]:
            await refused(context)
            yield self.reply(context, request)
            self.between()
            yield self.reply(context, request)

        async def client_stream(requests: AsyncIterator[bytes], context: _AioContext) -> bytes:
            await refused(context, requests)
            received = [request async for request in requests]
            return self.reply(context, *received)

        async def bidi_stream(
            requests: AsyncIterator[bytes], context: _AioContext
        ) -> AsyncIterator[bytes]:
            await refused(context, requests)
            async for request in requests:
                yield self.reply(context, request)

        return dict(zip(KINDS, (unary, server_stream, client_stream, bidi_stream), strict=True))


def call(
    channel: grpc.Channel,
    kind: Kind,
    *,
    metadata: Metadata | None = None,
    requests: Sequence[bytes] = REQUESTS,
    method: str | None = None,
    timeout: float = TIMEOUT,
) -> list[Answer]:
    """Call the Echo method of ``kind`` on a sync channel and read every response.

    Args:
        channel: A channel to a server with the Echo service.
        kind: Which RPC kind (and so, by default, which method).
        metadata: Call metadata, e.g. :func:`bearer` of a token.
        requests: What to send (a unary request is the first).
        method: Another method name of the same kind (see ``Echo(methods=...)``), or a
            full name (``/pkg.Service/Method``): the Echo served under another name, or none.
        timeout: Deadline of the call, in seconds.

    Returns:
        The answers, one per response.

    Raises:
        grpc.RpcError: The call failed.
    """
    target = method if method and method[0] == "/" else path(method or METHODS[kind])
    options: dict[str, Any] = {"metadata": metadata, "timeout": timeout}
    invoke: Any = getattr(channel, kind)(target)
    responses: list[bytes]
    if kind == "unary_unary":
        responses = [invoke(requests[0], **options)]
    elif kind == "unary_stream":
        responses = list(invoke(requests[0], **options))
    elif kind == "stream_unary":
        responses = [invoke(iter(requests), **options)]
    else:
        responses = list(invoke(iter(requests), **options))
    return [Answer.parse(response) for response in responses]


async def call_aio(
    channel: grpc.aio.Channel,
    kind: Kind,
    *,
    metadata: Metadata | grpc.aio.Metadata | None = None,
    requests: Sequence[bytes] = REQUESTS,
    method: str | None = None,
    timeout: float = TIMEOUT,
) -> list[Answer]:
    """Like :func:`call`, on a ``grpc.aio`` channel.

    Raises:
        grpc.aio.AioRpcError: The call failed.
    """
    target = method if method and method[0] == "/" else path(method or METHODS[kind])
    options: dict[str, Any] = {"metadata": metadata, "timeout": timeout}
    invoke: Any = getattr(channel, kind)(target)
    responses: list[bytes]
    if kind == "unary_unary":
        responses = [await invoke(requests[0], **options)]
    elif kind == "unary_stream":
        responses = [response async for response in invoke(requests[0], **options)]
    elif kind == "stream_unary":
        responses = [await invoke(iter(requests), **options)]
    else:
        responses = [response async for response in invoke(iter(requests), **options)]
    return [Answer.parse(response) for response in responses]
