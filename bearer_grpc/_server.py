"""``bearer_grpc.BearerServerInterceptor``: bearer-token authentication for ``grpc.server``.

Where the work happens. A sync server runs ``intercept_service`` on its single dispatch
thread under the server lock, so only cheap work is done there: the auth flow runs to its
first yield (policy, header, cache lookup). Public methods pass through untouched; a
cache hit and every refusal are decided there. The signature check of a cache miss runs in
the wrapped handler, on the server's worker thread, before the application's behaviour
starts (so before a streaming request is read). The wrapped handler keeps the kind and
the (de)serializers of the application's handler and binds the caller for
:func:`~bearer_grpc.current_principal`.

Refusals set the code and the details first (so tracing interceptors record them), then
abort with the rich status of :func:`bearer_grpc._status.to_status` (``ErrorInfo`` and a
``www-authenticate`` trailer). Handlers that only refuse parse nothing the caller sent.

Unknown methods: without a valid token the caller gets UNAUTHENTICATED, as for any
method, so methods cannot be probed; with one, UNIMPLEMENTED (DESIGN 3.2).

Long-lived streams (the mid-stream policy). A token is valid for a stream only while it
is valid: once its ``exp + leeway`` has passed, or its ``jti`` reaches the verifier's
revocation set, the stream is ended with UNAUTHENTICATED ``TOKEN_EXPIRED`` or
``TOKEN_REVOKED`` at its next message, i.e. when a request arrives (before the handler
sees it) or when the handler produces a response (before it is sent). The check is a
clock read and a set lookup per message. Unary calls are checked once, at the start; a
stream that sends nothing is not interrupted (there are no timers: bound idle streams
with deadlines). Clients keeping streams open longer than a token lives must reopen them
with a fresh token.

Strict policies (``Policy(strict=True)``): :meth:`BearerServerInterceptor.check_services`
refuses to start with a method no rule covers; at run time, the first call to such a
method raises :class:`~bearer_grpc.PolicyError` in ``intercept_service`` (grpc answers
UNKNOWN and logs it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn, TypeVar

import grpc

from bearer_grpc._handlers import (
    Behaviour,
    InterceptorBase,
    Pending,
    copy_thread_pool,
    recheck,
)
from bearer_grpc._principal import _bind, _reset, _set
from bearer_grpc._status import abort
from bearer_grpc._verifier import Verifier
from bearer_grpc.core.errors import AuthError
from bearer_grpc.core.policy import Policy
from bearer_grpc.core.tokens import Principal

_TRequest = TypeVar("_TRequest")
_TResponse = TypeVar("_TResponse")


class BearerServerInterceptor(InterceptorBase, grpc.ServerInterceptor):
    """Authenticates every call of a ``grpc.server`` with a bearer token.

    ``grpc.server(pool, interceptors=[BearerServerInterceptor(verifier, policy)])``. Covers
    all four RPC kinds; see the module docstring for where work happens, unknown methods
    and the mid-stream policy.

    Args:
        verifier: Checks tokens (``bearer_grpc.Verifier``).
        policy: Access rules (default ``Policy()``: every method needs a valid token,
            health checking and reflection are public).
    """

    def __init__(self, verifier: Verifier, policy: Policy | None = None) -> None:
        super().__init__(verifier, policy)
        self._verifier = verifier

    def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], grpc.RpcMethodHandler[_TRequest, _TResponse] | None
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_TRequest, _TResponse] | None:
        """Decide what is cheap to decide, and wrap the handler (see the module docstring).

        Raises:
            PolicyError: Strict mode, and no rule covers this existing method.
        """
        admission = self._admit(handler_call_details)
        if admission is None:
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        return self._route(admission, handler, handler_call_details.method)

    def _wrap(
        self,
        behaviour: Behaviour,
        handler: grpc.RpcMethodHandler[Any, Any],
        admission: Principal | Pending,
    ) -> Behaviour:
        request_streaming = handler.request_streaming

        if handler.response_streaming:

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                principal = self._enter(admission, context)
                if request_streaming:
                    request = self._requests(request, principal, context)
                with _bind(principal):
                    responses = iter(behaviour(request, context))
                return self._responses(responses, principal, context)

            return copy_thread_pool(behaviour, stream)

        if not request_streaming:

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                principal = (
                    admission
                    if isinstance(admission, Principal)
                    else self._enter(admission, context)
                )
                bound = _set(principal)
                try:
                    return behaviour(request, context)
                finally:
                    _reset(bound)

            return copy_thread_pool(behaviour, unary)

        def client_stream(request: Any, context: grpc.ServicerContext) -> Any:
            principal = self._enter(admission, context)
            request = self._requests(request, principal, context)
            with _bind(principal):
                response = behaviour(request, context)
            self._recheck(principal, context)
            return response

        return copy_thread_pool(behaviour, client_stream)

    def _enter(self, admission: Principal | Pending, context: grpc.ServicerContext) -> Principal:
        """The caller, verifying a cache miss here (on the worker thread)."""
        if isinstance(admission, Principal):
            return admission
        try:
            return admission.finish(self._verifier.verify(admission.token))
        except AuthError as err:
            abort(context, err)

    def _recheck(self, principal: Principal, context: grpc.ServicerContext) -> None:
        error = recheck(principal, self._local)
        if error is not None:
            abort(context, error)

    def _requests(
        self, requests: Iterable[Any], principal: Principal, context: grpc.ServicerContext
    ) -> Iterator[Any]:
        for request in requests:
            self._recheck(principal, context)
            yield request

    def _responses(
        self, responses: Iterator[Any], principal: Principal, context: grpc.ServicerContext
    ) -> Iterator[Any]:
        try:
            while True:
                with _bind(principal):
                    try:
                        response = next(responses)
                    except StopIteration:
                        return
                self._recheck(principal, context)
                yield response
        finally:
            close = getattr(responses, "close", None)
            if close is not None:
                with _bind(principal):
                    close()

    def _refusing(self, error: AuthError) -> Behaviour:
        return _refusing_behaviour(error)

    def _unknown(self, admission: AuthError | Pending) -> Behaviour:
        def unknown_method(requests: Any, context: grpc.ServicerContext) -> NoReturn:
            if isinstance(admission, AuthError):
                abort(context, admission)
            self._enter(admission, context)
            _not_found(context)

        return unknown_method


def _refusing_behaviour(error: AuthError) -> Behaviour:
    def refuse(request: Any, context: grpc.ServicerContext) -> NoReturn:
        abort(context, error)

    return refuse


def _not_found(context: grpc.ServicerContext) -> NoReturn:
    # grpc's own answer for a method it does not know, given once the caller is known.
    context.set_code(grpc.StatusCode.UNIMPLEMENTED)
    context.set_details("Method not found!")
    context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
