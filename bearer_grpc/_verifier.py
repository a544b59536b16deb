"""``bearer_grpc.Verifier``: what a protected server checks tokens with (sync flavour).

A verifier answers two questions for the interceptor's auth flow:
``lookup(token)``, a cache hit (pure, never blocks), and ``verify(token)``, a full
verification, which for local verifiers is a signature check in memory and for remote
ones a ``VerifyToken`` RPC. ``bearer_grpc.aio.Verifier`` has the same constructors and an
``async verify``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Self

from bearer_grpc.core.cache import DEFAULT_CACHE_SIZE
from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.flow import LocalVerification
from bearer_grpc.core.keys import PublicKeySet
from bearer_grpc.core.tokens import DEFAULT_LEEWAY, Principal


class VerifierBase:
    """What sync and asyncio verifiers share: constructors, cache lookups, lifecycle.

    Args:
        local: The in-memory verification state.
    """

    def __init__(self, local: LocalVerification) -> None:
        self.local = local

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(issuer={self.local.issuer!r}, audience={self.local.audience!r})"
        )

    @classmethod
    def from_jwks(
        cls,
        jwks: Mapping[str, Any] | str,
        *,
        issuer: str,
        audience: str,
        leeway: int = DEFAULT_LEEWAY,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Clock = system_clock,
    ) -> Self:
        """A verifier over a fixed key set (from a file or configuration).

        Args:
            jwks: A JWKS object or its JSON text. Only these keys are ever trusted.
            issuer: The exact ``iss`` required.
            audience: This service's audience; tokens must name it in ``aud``.
            leeway: Clock skew tolerated, seconds (default 30).
            cache_size: Verified tokens kept in memory (default 10,000; 0 disables).
            clock: Wall-clock time source.

        Raises:
            KeyError_: The key set is malformed or breaks a hygiene rule.
        """
        keys = PublicKeySet.from_json(jwks) if isinstance(jwks, str) else PublicKeySet(jwks)
        return cls(
            LocalVerification(
                issuer=issuer,
                audience=audience,
                clock=clock,
                keys=keys,
                leeway=leeway,
                cache_size=cache_size,
            )
        )

    def lookup(self, token: str) -> Principal | None:
        """A cached verification of ``token``, re-checked for expiry and revocation.

        Raises:
            TokenRevoked: The cached token was revoked since.
        """
        return self.local.lookup(token)

    def close(self) -> None:
        """Stop background work (nothing for a fixed key set)."""

    def jwks_json(self) -> str:
        """The trusted keys as a JWKS document ("{}" when none yet)."""
        keys = self.local.keys
        return keys.to_json() if keys is not None else json.dumps({"keys": []})


class Verifier(VerifierBase):
    """Checks bearer tokens for one audience, for sync ``grpc`` servers."""

    def verify(self, token: str) -> Principal:
        """Fully verify ``token`` (no scopes: the policy checks those).

        Raises:
            AuthError: The token is not valid, or (remote mode) cannot be checked.
        """
        return self.local.verify(token)
