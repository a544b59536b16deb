"""``bearer_grpc.aio.Verifier``: the asyncio flavour, same constructors, ``async verify``."""

from __future__ import annotations

from bearer_grpc import _verifier
from bearer_grpc.core.tokens import Principal


class Verifier(_verifier.VerifierBase):
    """Checks bearer tokens for one audience, for ``grpc.aio`` servers.

    Local verification is CPU work in memory and runs inline; only remote verification
    awaits the network.
    """

    async def verify(self, token: str) -> Principal:
        """Fully verify ``token`` (no scopes: the policy checks those).

        Raises:
            AuthError: The token is not valid, or (remote mode) cannot be checked.
        """
        return self.local.verify(token)
