"""Reading a refusal: the ``google.rpc.ErrorInfo`` bearer_grpc puts in a failed call.

A server protected by bearer_grpc, and the TokenService, end a refused call with a status
code, a terse message and rich details (``grpc-status-details-bin``) holding one
``ErrorInfo`` of domain ``bearer-grpc`` whose ``reason`` says why (``TOKEN_EXPIRED``,
``INSUFFICIENT_SCOPE``...)::

    with pytest.raises(grpc.RpcError) as refused:
        stub.GetOrder(request, metadata=bearer(expired_token))
    assert_refused(refused.value, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")

Each function takes the error a failed call raised: a sync ``grpc.RpcError`` (which is
also the ``grpc.Call``) or a ``grpc.aio.AioRpcError``.
"""

from __future__ import annotations

from typing import Any, Final

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

DOMAIN: Final = "bearer-grpc"
"""``ErrorInfo.domain`` of every error bearer_grpc reports (the wire contract, as a client
in any language sees it)."""


def _infos(call: Any) -> list[error_details_pb2.ErrorInfo | None]:
    """One entry per rich status detail: the ErrorInfo, or None for another message."""
    status = rpc_status.from_call(call)
    found: list[error_details_pb2.ErrorInfo | None] = []
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        found.append(info if detail.Unpack(info) else None)
    return found


def error_info(call: Any) -> error_details_pb2.ErrorInfo | None:
    """The ``google.rpc.ErrorInfo`` in a failed call's rich status, if it has one.

    Args:
        call: The error a failed call raised.

    Returns:
        The first ``ErrorInfo`` of the rich status details, or None when the call has
        no rich status or no ``ErrorInfo`` in it.
    """
    return next((info for info in _infos(call) if info is not None), None)


def reason_of(call: Any) -> str | None:
    """Why bearer_grpc refused a call: its ``ErrorInfo`` reason.

    Args:
        call: The error a failed call raised.

    Returns:
        The reason (e.g. ``TOKEN_REVOKED``), or None when the call carries no
        ``ErrorInfo`` of domain ``bearer-grpc``.
    """
    info = error_info(call)
    if info is None or info.domain != DOMAIN:
        return None
    reason: str = info.reason
    return reason


def assert_refused(call: Any, code: grpc.StatusCode, reason: str) -> error_details_pb2.ErrorInfo:
    """Assert that bearer_grpc refused a call with ``code`` and ``reason``.

    Args:
        call: The error a failed call raised.
        code: The status code it must have ended with.
        reason: The ``ErrorInfo`` reason it must carry (domain ``bearer-grpc``).

    Returns:
        The ``ErrorInfo``, for checks of its ``metadata``.

    Raises:
        AssertionError: Another code; rich details that are not exactly one
            ``ErrorInfo``; another domain or reason.
    """
    assert call.code() == code, f"ended with {call.code()}, not {code}: {call.details()!r}"
    infos = _infos(call)
    assert len(infos) == 1, f"{len(infos)} rich details, not one ErrorInfo: {call.details()!r}"
    (info,) = infos
    assert info is not None, f"the rich detail is not an ErrorInfo: {call.details()!r}"
    assert (info.domain, info.reason) == (DOMAIN, reason), (info.domain, info.reason)
    return info
