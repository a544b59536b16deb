"""What the sync and the asyncio server interceptors share; nothing here waits.

- :func:`admit` runs the auth flow (:func:`bearer_grpc.core.flow.auth_flow`) up to its
  first yield, as ``intercept_service`` must: public, a cache hit and every refusal are
  decided there without crypto; a cache miss comes back :class:`Pending`, for the wrapped
  handler to verify on the server's worker thread (sync) or in the call's task (asyncio).
- :func:`same_kind` re-creates a method handler of the same kind (unary or streaming,
  each side) around a new behaviour, and :func:`any_kind` makes one for a method that
  does not exist.
- :func:`recheck` is the per-message check of long-lived streams (see the mid-stream
  policy in :mod:`bearer_grpc._server`).
- :class:`InterceptorBase` holds the configuration and the strict-policy checks.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import Any, Final, TypeAlias, cast

import grpc
from google.protobuf import descriptor_pool

from bearer_grpc._verifier import VerifierBase
from bearer_grpc.core.errors import AuthError, TokenExpired, TokenRevoked
from bearer_grpc.core.flow import CachedLookup, LocalVerification, Metadata, auth_flow
from bearer_grpc.core.policy import Policy, PolicyError
from bearer_grpc.core.tokens import Principal, is_expired

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Behaviour: TypeAlias = Callable[..., Any]


class Pending:
    """A call whose token missed the cache: verify :attr:`token`, then :meth:`finish`.

    Args:
        token: The bearer token to verify.
        flow: The suspended auth flow, waiting for the verified principal.
    """

    __slots__ = ("_flow", "token")

    def __init__(self, token: str, flow: Generator[str, Principal, Principal | None]) -> None:
        self.token = token
        self._flow = flow

    def __repr__(self) -> str:
        return "Pending(token=<hidden>)"

    def finish(self, principal: Principal) -> Principal:
        """Hand the verified principal back to the flow, which checks the scopes.

        Raises:
            InsufficientScope: The method needs scopes the token lacks.
        """
        try:
            self._flow.send(principal)
        except StopIteration as done:
            return cast(Principal, done.value)
        raise RuntimeError("auth_flow yielded twice")  # pragma: no cover (flow contract)


Admission: TypeAlias = Principal | AuthError | Pending | None
"""What ``intercept_service`` knows: the caller (cache hit), a refusal, a pending
verification, or None for a public method."""


def admit(
    method: str, metadata: Metadata | None, policy: Policy, verifier: CachedLookup
) -> Admission:
    """Run the auth flow of one call as far as it goes without a verification.

    Args:
        method: Full method name.
        metadata: The call's invocation metadata.
        policy: The access rules.
        verifier: Answers cache lookups.

    Returns:
        See :data:`Admission`.
    """
    flow = auth_flow(method, metadata, policy, verifier)
    try:
        token = next(flow)
    except StopIteration as done:
        return cast(Principal | None, done.value)
    except AuthError as err:
        return err
    return Pending(token, flow)


def recheck(principal: Principal, local: LocalVerification) -> AuthError | None:
    """Whether a token that was valid when its call started has expired or been revoked.

    Same rules as a cache hit (:meth:`LocalVerification.lookup`): expired once the clock
    reaches ``exp + leeway``, revoked once its ``jti`` is in the revocation set.

    Returns:
        The error to end the call with, or None while the token is still good.
    """
    if is_expired(principal.expires_at, local.clock(), local.leeway):
        return TokenExpired()
    if principal.token_id in local.revocations:
        return TokenRevoked()
    return None


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


class InterceptorBase:
    """Configuration and strict-policy checks of both server interceptors.

    Args:
        verifier: Checks tokens; its ``local`` state answers the per-message rechecks.
        policy: Access rules (default ``Policy()``: every method needs a valid token,
            health checking and reflection are public).
    """

    def __init__(self, verifier: VerifierBase, policy: Policy | None = None) -> None:
        self._policy = policy if policy is not None else Policy()
        self._lookup = verifier
        self._local = verifier.local
        self._covered: set[str] = set()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._lookup!r}, {self._policy!r})"

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
        return admit(details.method, details.invocation_metadata, self._policy, self._lookup)

    def _route(
        self, admission: Principal | Pending | AuthError, handler: Handler | None, method: str
    ) -> Handler | None:
        """The handler to serve an admitted call with (both flavours; the hooks differ).

        Unknown method: UNIMPLEMENTED (None) for a known caller, else the caller's refusal.
        Known method: the refusal, or the application's handler wrapped to verify a cache
        miss and bind the caller (same kind, same serializers).
        """
        if handler is None:
            return None if isinstance(admission, Principal) else any_kind(self._unknown(admission))
        self._require_rule(method)
        if isinstance(admission, AuthError):
            return same_kind(handler, self._refusing(admission), deserialize=False)
        return same_kind(handler, self._wrap(behaviour_of(handler), handler, admission))

    def _unknown(self, admission: AuthError | Pending) -> Behaviour:
        """Hook: a behaviour for a method that does not exist."""
        raise NotImplementedError

    def _refusing(self, error: AuthError) -> Behaviour:
        """Hook: a behaviour that only ends the call with ``error``."""
        raise NotImplementedError

    def _wrap(
        self, behaviour: Behaviour, handler: Handler, admission: Principal | Pending
    ) -> Behaviour:
        """Hook: ``behaviour`` wrapped to finish authentication and bind the caller."""
        raise NotImplementedError

    def _require_rule(self, method: str) -> None:
        """Strict mode: refuse an existing method that no rule names (raises PolicyError)."""
        if self._policy.strict and method not in self._covered:
            self._policy.check_covers((method,))
            self._covered.add(method)  # bounded: only methods that have a handler get here
