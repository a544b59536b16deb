"""``bearer_grpc.BearerServerInterceptor``: bearer-token authentication for ``grpc.server``.

A sync server runs ``intercept_service`` on its single dispatch thread under the server
lock, so only cheap work is done there (policy, header, cache lookup); the verification
of a cache miss runs in the wrapped handler, on the worker thread, before the
application's behaviour starts. See :mod:`bearer_grpc._server` for the rules both
flavours follow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn, TypeVar

import grpc

from bearer_grpc._server import tracing
from bearer_grpc._server.principal import bind, reset_principal, set_principal
from bearer_grpc._server.routing import (
    Admitted,
    Behaviour,
    InterceptorBase,
    Pending,
    copy_thread_pool,
)
from bearer_grpc._status import abort
from bearer_grpc._verifier.protocol import SupportsVerify
from bearer_grpc.core.errors import AuthError
from bearer_grpc.core.policy import Policy
from bearer_grpc.core.tokens import Principal

_TRequest = TypeVar("_TRequest")
_TResponse = TypeVar("_TResponse")


class BearerServerInterceptor(InterceptorBase, grpc.ServerInterceptor):
    """Authenticates every call of a ``grpc.server`` with a bearer token.

    ``grpc.server(pool, interceptors=[BearerServerInterceptor(verifier, policy)])``. Covers
    all four RPC kinds and keeps each method's kind. Public methods pass through; a
    method the policy scopes needs a valid token with those scopes; any other method
    needs a valid token. Refusals carry ``ErrorInfo`` and a ``www-authenticate``
    trailer; a method that does not exist answers UNAUTHENTICATED to a caller without
    a valid token, UNIMPLEMENTED to one with it. A stream ends UNAUTHENTICATED at its
    next message once its token expired or was revoked (when the verifier can
    ``recheck``). Handlers read the caller with :func:`bearer_grpc.current_principal`.

    Certificate-bound tokens (RFC 8705: a ``cnf`` claim with ``x5t#S256``, from any
    issuer) are accepted only on a call made with that client certificate, checked on
    every call; other calls are refused UNAUTHENTICATED, ``TOKEN_BINDING_MISMATCH``.
    A ``Policy`` can require bound tokens for chosen methods (``certificate_bound``).
    See docs/certificate-bound.md.

    Args:
        verifier: Checks tokens: ``bearer_grpc.Verifier``, or any object with
            ``verify(token) -> Principal`` (:class:`bearer_grpc.SupportsVerify`).
        policy: Access rules (default ``Policy()``: every method needs a valid token,
            health checking and reflection are public).
        trusted_certificate_header: Where the client certificate of a call is read.
            None (default): from the TLS connection (a port opened with
            ``grpc.ssl_server_credentials(..., require_client_auth=True)``).
            ``"x-forwarded-client-cert"`` (Envoy) or ``"client-cert"`` (RFC 9440): only
            from that header, set by a TLS-terminating proxy that removes any copy a
            client sent, on a server reachable only through that proxy.
        trace_subject: Put an accepted caller's subject on the call's OpenTelemetry
            server span (attribute ``enduser.id``). Off by default: a subject is
            personal data. Refusals always add the event ``bearer_grpc.refused`` with
            the ``ErrorInfo`` reason; no span ever gets token material. See
            docs/tracing.md.

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

    def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], grpc.RpcMethodHandler[_TRequest, _TResponse] | None
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_TRequest, _TResponse] | None:
        """Decide what is cheap to decide, and wrap the handler to finish the rest.

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
        required: bool,
    ) -> Behaviour:
        request_streaming = handler.request_streaming

        if handler.response_streaming:

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                principal = self._enter(admission, context, required)
                if request_streaming:
                    request = self._requests(request, principal, context)
                with bind(principal):
                    responses = iter(behaviour(request, context))
                return self._responses(responses, principal, context)

            return copy_thread_pool(behaviour, stream)

        if not request_streaming:
            if isinstance(admission, Principal) and not self._binding.applies(admission, required):
                caller = admission  # the cache-hit path: nothing is left to check
                trace_subject = self._trace_subject

                def unary_hit(request: Any, context: grpc.ServicerContext) -> Any:
                    if trace_subject:
                        tracing.accepted(caller)
                    bound = set_principal(caller)
                    try:
                        return behaviour(request, context)
                    finally:
                        reset_principal(bound)

                return copy_thread_pool(behaviour, unary_hit)

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                bound = set_principal(self._enter(admission, context, required))
                try:
                    return behaviour(request, context)
                finally:
                    reset_principal(bound)

            return copy_thread_pool(behaviour, unary)

        def client_stream(request: Any, context: grpc.ServicerContext) -> Any:
            principal = self._enter(admission, context, required)
            request = self._requests(request, principal, context)
            with bind(principal):
                response = behaviour(request, context)
            self._recheck(principal, context)
            return response

        return copy_thread_pool(behaviour, client_stream)

    def _enter(
        self, admission: Principal | Pending, context: grpc.ServicerContext, required: bool
    ) -> Principal:
        """The caller, verifying a cache miss here (on the worker thread).

        Its certificate binding is checked on every call.
        """
        if isinstance(admission, Principal):
            principal = admission
        else:
            try:
                principal = admission.finish(self._verifier.verify(admission.token))
            except AuthError as err:
                _refuse(context, err)
        refusal = self._binding.error(principal, required, context)
        if refusal is not None:
            _refuse(context, refusal)
        if self._trace_subject:
            tracing.accepted(principal)
        return principal

    def _recheck(self, principal: Principal, context: grpc.ServicerContext) -> None:
        recheck = self._recheck_caller
        error = recheck(principal) if recheck is not None else None
        if error is not None:
            _refuse(context, error)

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
                with bind(principal):
                    try:
                        response = next(responses)
                    except StopIteration:
                        return
                self._recheck(principal, context)
                yield response
        finally:
            close = getattr(responses, "close", None)
            if close is not None:
                with bind(principal):
                    close()

    def _refusing(self, error: AuthError, *, streams: bool) -> Behaviour:
        return _refusing_behaviour(error)  # raises when called: fits every kind

    def _unknown(self, admission: Admitted, required: bool) -> Behaviour:
        def unknown_method(requests: Any, context: grpc.ServicerContext) -> NoReturn:
            if isinstance(admission, AuthError):
                _refuse(context, admission)
            self._enter(admission, context, required)
            _not_found(context)

        return unknown_method


def _refusing_behaviour(error: AuthError) -> Behaviour:
    def refuse(request: Any, context: grpc.ServicerContext) -> NoReturn:
        _refuse(context, error)

    return refuse


def _refuse(context: grpc.ServicerContext, error: AuthError) -> NoReturn:
    tracing.refused(error)
    abort(context, error)


def _not_found(context: grpc.ServicerContext) -> NoReturn:
    # grpc's own answer for a method it does not know, given once the caller is known.
    context.set_code(grpc.StatusCode.UNIMPLEMENTED)
    context.set_details("Method not found!")
    context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
