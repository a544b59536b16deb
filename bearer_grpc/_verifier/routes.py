"""Several issuers behind one verifier: the routing both flavours of ``any_of`` share.

A token is routed by the ``iss`` its claims name, read strictly but unverified
(:func:`~bearer_grpc.core.verification.peek_issuer`), before any key lookup or
signature check, to the one verifier configured for exactly that issuer; the chosen
verifier then checks everything, ``iss`` included. An issuer no verifier is configured
for is refused (``TOKEN_INVALID``) without any fetch: a token never adds an issuer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Generic, Protocol, TypeVar

from bearer_grpc.core.errors import AuthError, TokenInvalid
from bearer_grpc.core.tokens import Principal
from bearer_grpc.core.verification import LocalVerification, peek_issuer


class Routable(Protocol):
    """What routing needs of a verifier (both flavours' ``Verifier`` have it)."""

    local: LocalVerification

    def lookup(self, token: str) -> Principal | None: ...

    def recheck(self, principal: Principal) -> AuthError | None: ...

    def close(self) -> None: ...


V = TypeVar("V", bound=Routable)


class IssuerRoutes(Generic[V]):
    """The verifiers of several issuers, each found by its issuer.

    Args:
        verifiers: One verifier per issuer, each with a fixed issuer (``from_jwks``,
            ``from_issuer``, ``from_jwks_url``).

    Raises:
        ValueError: No verifier, a verifier without a fixed issuer, or two for one issuer.
    """

    def __init__(self, verifiers: Iterable[V]) -> None:
        self.verifiers: Sequence[V] = tuple(verifiers)
        if not self.verifiers:
            raise ValueError("any_of needs at least one verifier")
        self._by_issuer: dict[str, V] = {}
        for verifier in self.verifiers:
            issuer = verifier.local.issuer
            if not issuer:
                raise ValueError("any_of routes by issuer: each verifier needs a fixed issuer")
            if issuer in self._by_issuer:
                raise ValueError(f"two verifiers for the issuer {issuer!r}")
            self._by_issuer[issuer] = verifier

    def __repr__(self) -> str:
        return f"{type(self).__name__}(issuers={list(self._by_issuer)!r})"

    def route(self, token: str) -> V:
        """The verifier of the issuer ``token`` names (nothing verified yet).

        Raises:
            TokenMalformed: Not a compact JWS.
            TokenInvalid: No ``iss``, or an issuer no verifier is configured for.
        """
        verifier = self._by_issuer.get(peek_issuer(token))
        if verifier is None:
            raise TokenInvalid()
        return verifier

    def lookup(self, token: str) -> Principal | None:
        """A cached verification of ``token`` by any of the verifiers, or None.

        Each cache holds only tokens its own verifier accepted, as exactly that string.

        Raises:
            TokenRevoked: The cached token was revoked since.
            VerifierUnavailable: A verifier was closed.
        """
        for verifier in self.verifiers:
            principal = verifier.lookup(token)
            if principal is not None:
                return principal
        return None

    def recheck(self, principal: Principal) -> AuthError | None:
        """Whether the token of a running stream has expired or been revoked since.

        Asked of the verifier of its issuer.
        """
        verifier = self._by_issuer.get(principal.issuer)
        return verifier.recheck(principal) if verifier is not None else TokenInvalid()

    def close(self) -> None:
        """Close every verifier."""
        for verifier in self.verifiers:
            verifier.close()
