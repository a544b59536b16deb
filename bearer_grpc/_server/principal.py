"""``current_principal()``: the verified caller of the call being handled.

The server interceptors bind the principal in a :class:`contextvars.ContextVar` *inside*
the wrapped handler, around each step of the application's behaviour, never in
``intercept_service``: grpc has open bugs where context set there does not reach the
handler's thread (sync) or task (asyncio). Binding per step (each call of the behaviour,
each ``next`` of a response iterator) also means nothing is left bound when a stream is
abandoned half-way.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType

from bearer_grpc.core.errors import NoPrincipal
from bearer_grpc.core.tokens import Principal

_CURRENT: ContextVar[Principal | None] = ContextVar("bearer_grpc.principal", default=None)


def current_principal() -> Principal:
    """The verified caller of the call being handled (sync and asyncio servers alike).

    Returns:
        The principal the interceptor verified for this call: ``subject``, ``scopes``,
        ``token_id``, ``claims`` and the rest of :class:`~bearer_grpc.Principal`.

    Raises:
        NoPrincipal: Called outside an authenticated call, or in a public method.
    """
    principal = _CURRENT.get()
    if principal is None:
        raise NoPrincipal()
    return principal


set_principal = _CURRENT.set
"""Bind a principal in the current context; returns what :data:`reset_principal` takes
back.

The hot path's way to bind around one call of a behaviour (``try``/``finally``): a
fraction of the cost of entering and leaving :class:`bind`.
"""
reset_principal = _CURRENT.reset
"""Undo a :data:`set_principal`."""


class bind:
    """Bind ``principal`` (None: nobody) for the duration of a ``with`` block.

    A class rather than ``@contextmanager``: it runs on every call and every stream
    message, and this costs a fraction of a generator-based manager.
    """

    __slots__ = ("_principal", "_token")
    _token: Token[Principal | None]

    def __init__(self, principal: Principal | None) -> None:
        self._principal = principal

    def __enter__(self) -> None:
        self._token = _CURRENT.set(self._principal)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _CURRENT.reset(self._token)
