"""The one table from bearer_grpc errors to gRPC statuses, and rich error details.

No other module chooses a status code. Each error becomes a ``grpc.Status`` with the
terse public message, a ``google.rpc.ErrorInfo`` (domain ``bearer-grpc``) in
``grpc-status-details-bin`` for authentication and authorisation errors, and a
``www-authenticate`` trailer in RFC 6750 §3 form. Where the answer is plain HTTP
(``bearer-grpc authz`` refusing a request that is not a gRPC call), the HTTP status is
the one gRPC's own HTTP mapping pairs with that code. An :class:`Overloaded` answer carries a
``google.rpc.RetryInfo`` with the delay after which a retry may succeed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from bearer_grpc.core.errors import (
    AuthError,
    BearerGrpcError,
    Conflict,
    Forbidden,
    Incompatible,
    InsufficientScope,
    InvalidGrant,
    InvalidRequest,
    NotFound,
    Overloaded,
    TokenMalformed,
    TokenMissing,
    Unavailable,
    VerifierUnavailable,
)
from bearer_grpc.core.wire import ERROR_DOMAIN

_CODES: Final[dict[type[BearerGrpcError], grpc.StatusCode]] = {
    InsufficientScope: grpc.StatusCode.PERMISSION_DENIED,
    VerifierUnavailable: grpc.StatusCode.UNAVAILABLE,
    AuthError: grpc.StatusCode.UNAUTHENTICATED,
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    InvalidGrant: grpc.StatusCode.UNAUTHENTICATED,
    Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Conflict: grpc.StatusCode.ALREADY_EXISTS,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Incompatible: grpc.StatusCode.FAILED_PRECONDITION,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


_HTTP: Final[dict[grpc.StatusCode, int]] = {
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
}


@dataclass(frozen=True)
class _Status(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def status_code(error: BearerGrpcError) -> grpc.StatusCode:
    """The gRPC code of an error (UNKNOWN for a class missing from the table)."""
    for cls in type(error).__mro__:
        code = _CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.UNKNOWN


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status of a refusal with gRPC ``code`` (500 for codes not listed)."""
    return _HTTP.get(code, 500)


def www_authenticate(error: AuthError) -> str:
    """The RFC 6750 §3 challenge for an authentication or authorisation error."""
    if isinstance(error, TokenMissing):
        return "Bearer"
    if isinstance(error, InsufficientScope):
        scope = " ".join(error.required_scopes)
        return f'Bearer error="insufficient_scope", scope="{scope}"'
    code = "invalid_request" if isinstance(error, TokenMalformed) else "invalid_token"
    return f'Bearer error="{code}", error_description="{error.message}"'


def to_status(error: BearerGrpcError) -> grpc.Status:
    """The gRPC status of ``error``: code, terse message, rich details, challenge."""
    code = status_code(error)
    if isinstance(error, Overloaded):
        delay = duration_pb2.Duration(seconds=max(1, math.ceil(error.retry_after)))
        retry = any_pb2.Any()
        retry.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        rich = rpc_status.to_status(
            status_pb2.Status(code=code.value[0], message=error.message, details=[retry])
        )
        return _Status(code, error.message, tuple(rich.trailing_metadata))
    if not isinstance(error, AuthError):
        return _Status(code, error.message, ())
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN)
    if isinstance(error, InsufficientScope):
        info.metadata["required_scopes"] = " ".join(error.required_scopes)
    detail = any_pb2.Any()
    detail.Pack(info)
    rich = rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=error.message, details=[detail])
    )
    trailers = (*rich.trailing_metadata, ("www-authenticate", www_authenticate(error)))
    return _Status(code, error.message, trailers)


def abort(context: grpc.ServicerContext, error: BearerGrpcError) -> NoReturn:
    """End a sync call with the status of ``error``.

    The code and details are set first, so tracing interceptors record them (grpc's
    ``abort_with_status`` alone does not show them to an outer interceptor).
    """
    status = to_status(error)
    context.set_code(status.code)
    context.set_details(status.details)
    context.abort_with_status(status)


async def abort_async(
    context: grpc.aio.ServicerContext[Any, Any], error: BearerGrpcError
) -> NoReturn:
    """End a ``grpc.aio`` call with the status of ``error`` (see :func:`abort`)."""
    status = to_status(error)
    context.set_code(status.code)
    context.set_details(status.details)
    await context.abort_with_status(status)
    raise AssertionError("abort_with_status returned")  # it raises; for the type checker
