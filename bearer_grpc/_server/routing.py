"""What the sync and the asyncio server interceptors share; nothing here waits.

- :meth:`InterceptorBase._admit` runs the admission of a call
  (:func:`bearer_grpc.core.admission.admit`) as far as it goes without I/O, as
  ``intercept_service`` must: public, a cache hit and every refusal are decided there
  without crypto; a cache miss comes back :class:`Pending`, for the wrapped handler to
  verify on the server's worker thread (sync) or in the call's task (asyncio).
- :meth:`InterceptorBase._route` hands grpc the handler to serve an admitted call with.
  Per method that has a handler it keeps a :class:`_Route` (bounded by the methods that
  exist): the method's rule, the application's handler, and the last handler it built,
  reused when the next call comes from the same cached principal.
- :func:`same_kind` re-creates a method handler of the same kind (unary or streaming,
  each side) around a new behaviour, and :func:`any_kind` makes one for a method that
  does not exist.
- :class:`InterceptorBase` holds the configuration, the verifier's optional parts, the
  certificate binding (:mod:`.binding`) and the strict-policy checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, TypeAlias

import grpc
from google.protobuf import descriptor_pool

from bearer_grpc._server.binding import CertificateBinding
from bearer_grpc._verifier.base import VerifierBase
from bearer_grpc._verifier.routes import IssuerRoutes
from bearer_grpc.core.admission import Lookup, Pending, admit
from bearer_grpc.core.errors import AuthError, PolicyError
from bearer_grpc.core.policy import Policy, Rule
from bearer_grpc.core.tokens import Principal

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Behaviour: TypeAlias = Callable[..., Any]

__all__ = [
    "Admission",
    "Admitted",
    "Behaviour",
    "Handler",
    "InterceptorBase",
    "Pending",
    "any_kind",
    "behaviour_of",
    "copy_thread_pool",
    "same_kind",
    "service_methods",
]

Admission: TypeAlias = Principal | AuthError | Pending | None
"""What ``intercept_service`` knows: the caller (cache hit), a refusal, a pending
verification, or None for a public method."""
Admitted: TypeAlias = Principal | AuthError | Pending
"""An :data:`Admission` of a method that is not public."""


_FACTORIES: Final = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def behaviour_of(handler: Handler) -> Behaviour:
    """The application behaviour of ``handler`` (whichever of the four kinds it is)."""
    if handler.request_streaming:
        behaviour = handler.stream_stream if handler.response_streaming else handler.stream_unary
    else:
        behaviour = handler.unary_stream if handler.response_streaming else handler.unary_unary
    if behaviour is None:
        raise TypeError("method handler has no behaviour of its kind")
    return behaviour


def same_kind(handler: Handler, behaviour: Behaviour, *, deserialize: bool = True) -> Handler:
    """A handler of the same kind as ``handler``, running ``behaviour``.

    Args:
        handler: The application's handler.
        behaviour: The wrapped behaviour.
        deserialize: Keep the request deserializer. False for handlers that only refuse:
            then nothing a caller sent is parsed before the call is authenticated.
    """
    factory = _FACTORIES[handler.request_streaming, handler.response_streaming]
    if not deserialize:
        return factory(behaviour)
    return factory(behaviour, handler.request_deserializer, handler.response_serializer)


def any_kind(behaviour: Behaviour) -> Handler:
    """A handler for a method that does not exist (its kind is unknown).

    Bidirectional streaming fits every client call, as on the wire all calls are
    streams, and reads nothing before ``behaviour`` aborts the call.
    """
    return grpc.stream_stream_rpc_method_handler(behaviour)


def copy_thread_pool(behaviour: Behaviour, wrapped: Behaviour) -> Behaviour:
    """Keep a sync behaviour's ``experimental_thread_pool`` (grpc reads it off the function)."""
    pool = getattr(behaviour, "experimental_thread_pool", None)
    if pool is not None:
        wrapped.experimental_thread_pool = pool  # type: ignore[attr-defined]
    return wrapped


def service_methods(
    services: Iterable[str], pool: descriptor_pool.DescriptorPool | None = None
) -> list[str]:
    """Full method names of services, read from a protobuf descriptor pool.

    Args:
        services: Full service names, e.g. ``shop.v1.Orders``.
        pool: Where to look them up (default: the default pool, where generated
            ``_pb2`` modules register themselves when imported).

    Raises:
        PolicyError: A service is not in the pool.
    """
    pool = pool if pool is not None else descriptor_pool.Default()
    methods: list[str] = []
    for name in services:
        try:
            service = pool.FindServiceByName(name)
        except KeyError as err:
            raise PolicyError(f"unknown service: {name}") from err
        methods.extend(f"/{service.full_name}/{method.name}" for method in service.methods)
    return methods


class _Handler(grpc.RpcMethodHandler):  # type: ignore[type-arg]
    """A method handler like grpc's own, but cheaper to make: one per call on a miss."""

    __slots__ = (
        "request_deserializer",
        "request_streaming",
        "response_serializer",
        "response_streaming",
        "stream_stream",
        "stream_unary",
        "unary_stream",
        "unary_unary",
    )

    def __init__(self, template: Handler, kind: str, behaviour: Behaviour) -> None:
        self.request_streaming = template.request_streaming
        self.response_streaming = template.response_streaming
        self.request_deserializer = template.request_deserializer
        self.response_serializer = template.response_serializer
        self.unary_unary = self.unary_stream = self.stream_unary = self.stream_stream = None
        setattr(self, kind, behaviour)


def _kind(handler: Handler) -> str:
    if handler.request_streaming:
        return "stream_stream" if handler.response_streaming else "stream_unary"
    return "unary_stream" if handler.response_streaming else "unary_unary"


class _Route:
    """What an existing method's calls are served with (see the module docstring).

    Args:
        handler: The application's handler (identity-checked on every call: a generic
            handler may return another one later, and then a new route is made).
        rule: The method's policy rule.
    """

    __slots__ = ("behaviour", "handler", "kind", "last", "rule")

    def __init__(self, handler: Handler, rule: Rule) -> None:
        self.handler = handler
        self.rule = rule
        self.kind = _kind(handler)
        self.behaviour = behaviour_of(handler)
        self.last: tuple[Principal | None, Handler | None] = (None, None)


def _no_lookup(token: str) -> None:
    """The fast path of a verifier that has none: every call is verified."""
    return None


class InterceptorBase:
    """Configuration and strict-policy checks of both server interceptors.

    Args:
        verifier: Checks tokens: any object with ``verify`` (see
            :mod:`bearer_grpc._verifier.protocol`); its ``lookup`` and ``recheck``
            are used when it has them.
        policy: Access rules (default ``Policy()``: every method needs a valid token,
            health checking and reflection are public).
        trusted_certificate_header: Where certificate-bound tokens find the client
            certificate: None (the default) for the TLS connection, or a header set by
            a TLS-terminating proxy (see :class:`.binding.CertificateBinding`).
        trace_subject: Put an accepted caller's subject on the call's OpenTelemetry
            span (see :mod:`.tracing`).

    Raises:
        ValueError: ``trusted_certificate_header`` is not a header it can read.
    """

    def __init__(
        self,
        verifier: object,
        policy: Policy | None = None,
        *,
        trusted_certificate_header: str | None = None,
        trace_subject: bool = False,
    ) -> None:
        self._binding = CertificateBinding(trusted_certificate_header)
        self._trace_subject = trace_subject
        self._policy = policy if policy is not None else Policy()
        self._verifier_object = verifier
        self._lookup: Lookup = getattr(verifier, "lookup", _no_lookup)
        self._recheck_caller: Callable[[Principal], AuthError | None] | None = getattr(
            verifier, "recheck", None
        )
        # The cache-hit shortcut skips parsing a value whose candidate token a lookup can
        # only find if it was verified as exactly that b64token: true of our verifiers'
        # caches, not known of anyone else's.
        self._exact_lookup = isinstance(verifier, VerifierBase | IssuerRoutes)
        self._routes: dict[str, _Route] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._verifier_object!r}, {self._policy!r})"

    def check_services(
        self, services: Iterable[str], *, pool: descriptor_pool.DescriptorPool | None = None
    ) -> None:
        """In strict mode, refuse to start unless every method of ``services`` has a rule.

        Call it before ``server.start()`` with the services you register, e.g.
        ``interceptor.check_services(["shop.v1.Orders", health.SERVICE_NAME])``. Without
        it, a strict interceptor still refuses each uncovered method at its first call.

        Args:
            services: Full service names as in the ``.proto`` files.
            pool: The descriptor pool to read methods from (default: the default pool).

        Raises:
            PolicyError: A service is unknown, or (strict mode) methods have no rule;
                the message lists them.
        """
        self._policy.check_covers(service_methods(services, pool))

    def _admit(self, details: grpc.HandlerCallDetails) -> Admission:
        """The auth flow of one call up to its first wait (see :data:`Admission`)."""
        route = self._routes.get(details.method)
        rule = route.rule if route is not None else self._policy.rule_for(details.method)
        if rule.public:
            return None
        try:
            return admit(
                rule, details.invocation_metadata, self._lookup, shortcut=self._exact_lookup
            )
        except AuthError as err:
            return err

    def _route(self, admission: Admitted, handler: Handler | None, method: str) -> Handler | None:
        """The handler to serve an admitted call with (both flavours; the hooks differ).

        Unknown method: UNIMPLEMENTED (None) for a known caller, else the caller's refusal
        (a certificate-bound caller is known once its certificate is checked).
        Known method: the refusal, or the application's handler wrapped to verify a cache
        miss, check the certificate binding and bind the caller (same kind, same
        serializers).

        Raises:
            PolicyError: Strict mode, and no rule covers this existing method.
        """
        if handler is None:
            required = self._policy.rule_for(method).certificate_bound
            if isinstance(admission, Principal) and not self._binding.applies(admission, required):
                return None
            return any_kind(self._unknown(admission, required))
        route = self._routes.get(method)
        if route is None or route.handler is not handler:
            route = self._new_route(handler, method)
        if isinstance(admission, AuthError):
            refusing = self._refusing(admission, streams=handler.response_streaming)
            return same_kind(handler, refusing, deserialize=False)
        last_principal, last_handler = route.last
        if admission is last_principal and last_handler is not None:
            return last_handler
        behaviour = self._wrap(route.behaviour, handler, admission, route.rule.certificate_bound)
        wrapped = _Handler(handler, route.kind, behaviour)
        if isinstance(admission, Principal):
            route.last = (admission, wrapped)
        return wrapped

    def _new_route(self, handler: Handler, method: str) -> _Route:
        """Strict mode: refuse an existing method that no rule names (raises PolicyError)."""
        if self._policy.strict:
            self._policy.check_covers((method,))
        route = _Route(handler, self._policy.rule_for(method))
        self._routes[method] = route  # bounded: only methods that have a handler get here
        return route

    def _unknown(self, admission: Admitted, required: bool) -> Behaviour:
        """Hook: a behaviour for a method that does not exist.

        ``required``: its rule asks for certificate-bound tokens.
        """
        raise NotImplementedError

    def _refusing(self, error: AuthError, *, streams: bool) -> Behaviour:
        """Hook: a behaviour that only ends the call with ``error``, shaped for its kind.

        ``streams``: the method streams its responses. The shape lets an outer interceptor
        that wraps behaviours by their kind (OpenTelemetry's) still wrap it.
        """
        raise NotImplementedError

    def _wrap(
        self, behaviour: Behaviour, handler: Handler, admission: Principal | Pending, required: bool
    ) -> Behaviour:
        """Hook: ``behaviour`` wrapped to finish authentication and bind the caller.

        Authentication is verification, then the certificate binding (``required``: the
        method accepts bound tokens only).
        """
        raise NotImplementedError
