"""``bearer_grpc.aio.BearerServerInterceptor``: the same interceptor for ``grpc.aio`` servers.

Same rules, same refusals, same mid-stream policy as the sync interceptor (see
:mod:`bearer_grpc._server`); only the waiting differs. A cache miss is verified with
``await verifier.verify(token)`` in the call's own task, before the behaviour starts.

Behaviours are wrapped in the style grpc.aio dispatches on: a coroutine function stays a
coroutine function (unary responses, or the ``context.read()``/``context.write()`` API,
which then re-checks the token on every read and write), an async generator function
stays one (streamed responses re-checked as they are produced). A streamed request
iterator is re-checked as each request arrives. Sync behaviours (grpc.aio's migration
thread pool) are not supported: such a call is refused (grpc answers UNKNOWN), never let
through unchecked.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable
from typing import Any, NoReturn, TypeVar, cast

import grpc
import grpc.aio

from bearer_grpc._server import tracing
from bearer_grpc._server.principal import bind, reset_principal, set_principal
from bearer_grpc._server.routing import Admitted, Behaviour, InterceptorBase, Pending
from bearer_grpc._status import abort_async
from bearer_grpc._verifier.protocol_aio import SupportsVerify
from bearer_grpc.core.errors import AuthError
from bearer_grpc.core.policy import Policy
from bearer_grpc.core.tokens import Principal

_TRequest = TypeVar("_TRequest")
_TResponse = TypeVar("_TResponse")
Context = grpc.aio.ServicerContext[Any, Any]


class BearerServerInterceptor(InterceptorBase, grpc.aio.ServerInterceptor):
    """Authenticates every call of a ``grpc.aio`` server with a bearer token.

    ``grpc.aio.server(interceptors=[BearerServerInterceptor(verifier, policy)])``.
    The rules are those of :class:`bearer_grpc.BearerServerInterceptor`, certificate
    binding included; behaviours must be ``async`` (coroutine or async generator
    functions).

    Args:
        verifier: Checks tokens: ``bearer_grpc.aio.Verifier``, or any object with
            ``async def verify(token) -> Principal``
            (:class:`bearer_grpc.aio.SupportsVerify`).
        policy: Access rules (default ``Policy()``: every method needs a valid token,
            health checking and reflection are public).
        trusted_certificate_header: Where the client certificate of a call is read:
            None (default) from the TLS connection, or only from
            ``"x-forwarded-client-cert"`` (Envoy) or ``"client-cert"`` (RFC 9440) set
            by a TLS-terminating proxy (see :class:`bearer_grpc.BearerServerInterceptor`).
        trace_subject: Put an accepted caller's subject on the call's OpenTelemetry
            server span (``enduser.id``); off by default (see
            :class:`bearer_grpc.BearerServerInterceptor`).

    Raises:
        ValueError: ``trusted_certificate_header`` is not one of those names.
    """

    def __init__(
        self,
        verifier: SupportsVerify,
        policy: Policy | None = None,
        *,
        trusted_certificate_header: str | None = None,
        trace_subject: bool = False,
    ) -> None:
        super().__init__(
            verifier,
            policy,
            trusted_certificate_header=trusted_certificate_header,
            trace_subject=trace_subject,
        )
        self._verifier = verifier

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails],
            Awaitable[grpc.RpcMethodHandler[_TRequest, _TResponse] | None],
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_TRequest, _TResponse] | None:
        """Decide what is cheap to decide, and wrap the handler.

        Raises:
            PolicyError: Strict mode, and no rule covers this existing method.
            TypeError: The method's behaviour is not async.
        """
        admission = self._admit(handler_call_details)
        if admission is None:
            return await continuation(handler_call_details)
        handler = await continuation(handler_call_details)
        return self._route(admission, handler, handler_call_details.method)

    def _wrap(
        self,
        behaviour: Behaviour,
        handler: grpc.RpcMethodHandler[Any, Any],
        admission: Principal | Pending,
        required: bool,
    ) -> Behaviour:
        request_streaming = handler.request_streaming
        streaming = request_streaming or handler.response_streaming

        if handler.response_streaming and inspect.isasyncgenfunction(behaviour):

            async def generate(request: Any, context: Context) -> AsyncGenerator[Any, None]:
                principal = await self._enter(admission, context, required)
                if request_streaming:
                    request = self._requests(request, principal, context)
                with bind(principal):
                    responses = behaviour(request, self._guarded(principal, context))
                try:
                    while True:
                        with bind(principal):
                            try:
                                response = await anext(responses)
                            except StopAsyncIteration:
                                return
                        await self._recheck(principal, context)
                        yield response
                finally:
                    with bind(principal):
                        await responses.aclose()

            return generate

        if inspect.iscoroutinefunction(behaviour):
            if not streaming:
                if isinstance(admission, Principal) and not self._binding.applies(
                    admission, required
                ):
                    caller = admission  # the cache-hit path: nothing is left to check
                    trace_subject = self._trace_subject

                    async def unary_hit(request: Any, context: Context) -> Any:
                        if trace_subject:
                            tracing.accepted(caller)
                        bound = set_principal(caller)
                        try:
                            return await behaviour(request, context)
                        finally:
                            reset_principal(bound)

                    return unary_hit

                async def unary(request: Any, context: Context) -> Any:
                    bound = set_principal(await self._enter(admission, context, required))
                    try:
                        return await behaviour(request, context)
                    finally:
                        reset_principal(bound)

                return unary

            async def call(request: Any, context: Context) -> Any:
                principal = await self._enter(admission, context, required)
                if request_streaming:
                    request = self._requests(request, principal, context)
                with bind(principal):
                    result = await behaviour(request, self._guarded(principal, context))
                if request_streaming and not handler.response_streaming:
                    await self._recheck(principal, context)
                return result

            return call

        raise TypeError(
            "bearer_grpc.aio.BearerServerInterceptor wraps async behaviours only; "
            "use bearer_grpc.BearerServerInterceptor on sync servers"
        )

    async def _enter(
        self, admission: Principal | Pending, context: Context, required: bool
    ) -> Principal:
        """The caller, verifying a cache miss here (in the call's task).

        Its certificate binding is checked on every call.
        """
        if isinstance(admission, Principal):
            principal = admission
        else:
            try:
                principal = admission.finish(await self._verifier.verify(admission.token))
            except AuthError as err:
                await _refuse(context, err)
        refusal = self._binding.error(principal, required, context)
        if refusal is not None:
            await _refuse(context, refusal)
        if self._trace_subject:
            tracing.accepted(principal)
        return principal

    async def _recheck(self, principal: Principal, context: Context) -> None:
        recheck = self._recheck_caller
        error = recheck(principal) if recheck is not None else None
        if error is not None:
            await _refuse(context, error)

    async def _requests(
        self, requests: AsyncIterable[Any], principal: Principal, context: Context
    ) -> AsyncGenerator[Any, None]:
        async for request in requests:
            await self._recheck(principal, context)
            yield request

    def _guarded(self, principal: Principal, context: Context) -> Context:
        recheck_token = functools.partial(self._recheck, principal, context)
        return cast(Context, _GuardedContext(context, recheck_token))

    def _refusing(self, error: AuthError, *, streams: bool) -> Behaviour:
        return _refusing_stream(error) if streams else _refusing_behaviour(error)

    def _unknown(self, admission: Admitted, required: bool) -> Behaviour:
        async def unknown_method(requests: Any, context: Context) -> NoReturn:
            if isinstance(admission, AuthError):
                await _refuse(context, admission)
            await self._enter(admission, context, required)
            await _not_found(context)

        return unknown_method


class _GuardedContext:
    """A servicer context whose ``read`` and ``write`` re-check the token first.

    Handed to streaming behaviours, so that the ``context.read()``/``context.write()``
    API follows the mid-stream policy too; everything else is the call's own context.
    """

    def __init__(self, context: Context, recheck_token: Callable[[], Awaitable[None]]) -> None:
        self._context = context
        self._recheck = recheck_token

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def read(self) -> Any:
        """The next request (``grpc.aio.EOF`` at the end), once the token is re-checked."""
        request = await self._context.read()
        if request is not grpc.aio.EOF:
            await self._recheck()
        return request

    async def write(self, message: Any) -> None:
        """Send a response, once the token is re-checked."""
        await self._recheck()
        await self._context.write(message)


def _refusing_behaviour(error: AuthError) -> Behaviour:
    async def refuse(request: Any, context: Context) -> NoReturn:
        await _refuse(context, error)

    return refuse


def _refusing_stream(error: AuthError) -> Behaviour:
    async def refuse(request: Any, context: Context) -> AsyncGenerator[Any, None]:
        await _refuse(context, error)
        yield  # an async generator function, as streamed responses are

    return refuse


async def _refuse(context: Context, error: AuthError) -> NoReturn:
    tracing.refused(error)
    await abort_async(context, error)


async def _not_found(context: Context) -> NoReturn:
    # grpc's own answer for a method it does not know, given once the caller is known.
    context.set_code(grpc.StatusCode.UNIMPLEMENTED)
    context.set_details("Method not found!")
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
