"""The interceptor a user writes by hand: ``jwt.decode`` on every call, unary only.

It reads the ``authorization`` metadata, decodes the ES256 token with PyJWT (key,
algorithms, audience, issuer) and refuses the call with UNAUTHENTICATED otherwise. This is
the baseline bearer_grpc must beat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import grpc.aio
import jwt


def naive_accepts(
    metadata: Sequence[tuple[str, Any]] | None, key: Any, issuer: str, audience: str
) -> bool:
    """Whether the call carries ``Bearer <token>`` that PyJWT accepts."""
    for name, value in metadata or ():
        if name == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            try:
                jwt.decode(value[7:], key, algorithms=["ES256"], audience=audience, issuer=issuer)
            except jwt.PyJWTError:
                return False
            return True
    return False


def _deny(request: Any, context: grpc.ServicerContext) -> Any:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")


async def _deny_aio(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")


class NaiveInterceptor(grpc.ServerInterceptor):
    """PyJWT on every call, sync server."""

    def __init__(self, key: Any, issuer: str, audience: str) -> None:
        self._args = (key, issuer, audience)
        self._deny: Any = grpc.unary_unary_rpc_method_handler(_deny)

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        if naive_accepts(handler_call_details.invocation_metadata, *self._args):
            return continuation(handler_call_details)
        return self._deny


class NaiveAioInterceptor(grpc.aio.ServerInterceptor):
    """PyJWT on every call, aio server."""

    def __init__(self, key: Any, issuer: str, audience: str) -> None:
        self._args = (key, issuer, audience)
        self._deny: Any = grpc.unary_unary_rpc_method_handler(_deny_aio)

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        if naive_accepts(handler_call_details.invocation_metadata, *self._args):
            return await continuation(handler_call_details)
        return self._deny
