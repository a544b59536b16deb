"""What a server interceptor needs of a verifier: the protocol a custom verifier implements.

The minimum is :class:`SupportsVerify`: ``verify(token) -> Principal``, raising
:class:`~bearer_grpc.AuthError` subclasses (``TokenInvalid``, ``TokenExpired``,
``VerifierUnavailable``, ...) for a token it does not accept. The token is whatever
followed ``Bearer`` in the one ``authorization`` entry (an RFC 6750 b64token); nothing
checks that it is a JWT first, so an opaque token reaches ``verify`` as it came. Build
the :class:`~bearer_grpc.Principal` yourself for tokens bearer_grpc did not issue.

Two parts are optional; ``bearer_grpc.Verifier`` has both:

- :class:`SupportsLookup`: a fast path asked on the server's dispatch path before any
  verification; without it every call is verified (``verify`` runs on the worker thread,
  or in the call's task on asyncio servers).
- :class:`SupportsRecheck`: asked before every message of a long-lived stream; without
  it a stream is checked only when it starts.

The asyncio interceptor takes the same protocol with ``async def verify``
(``bearer_grpc.aio.SupportsVerify``); ``lookup`` and ``recheck`` stay synchronous there,
as they must not wait.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bearer_grpc.core.errors import AuthError
from bearer_grpc.core.tokens import Principal


@runtime_checkable
class SupportsVerify(Protocol):
    """A verifier for sync servers: the one method ``BearerServerInterceptor`` needs."""

    def verify(self, token: str) -> Principal:
        """The caller a bearer token stands for.

        Args:
            token: The b64token that followed ``Bearer`` (never logged by the caller).

        Raises:
            AuthError: The token is not accepted (a subclass naming why), or cannot be
                checked now (``VerifierUnavailable``: the call is refused).
        """
        ...


@runtime_checkable
class SupportsLookup(Protocol):
    """Optional fast path: a verification remembered from an earlier call."""

    def lookup(self, token: str) -> Principal | None:
        """The principal of a token verified before and still valid, or None.

        It runs on the server's dispatch path, so it must not block.

        Raises:
            AuthError: The remembered token is no longer accepted (e.g. revoked).
        """
        ...


@runtime_checkable
class SupportsRecheck(Protocol):
    """Optional per-message check of long-lived streams."""

    def recheck(self, principal: Principal) -> AuthError | None:
        """Whether a caller accepted when its stream started is still accepted.

        Returns:
            The error to end the stream with (e.g. ``TokenRevoked``), or None.
        """
        ...
