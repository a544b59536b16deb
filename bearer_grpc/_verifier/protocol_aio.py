"""What the asyncio server interceptor needs of a verifier.

See :mod:`bearer_grpc._verifier.protocol`; only ``verify`` is a coroutine here.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bearer_grpc.core.tokens import Principal


@runtime_checkable
class SupportsVerify(Protocol):
    """A verifier for ``grpc.aio`` servers: the one method the interceptor needs."""

    async def verify(self, token: str) -> Principal:
        """The caller a bearer token stands for.

        Args:
            token: The b64token that followed ``Bearer`` (never logged by the caller).

        Raises:
            AuthError: The token is not accepted (a subclass naming why), or cannot be
                checked now (``VerifierUnavailable``: the call is refused).
        """
        ...
