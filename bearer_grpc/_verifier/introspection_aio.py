"""How an asyncio verifier checks opaque tokens with an RFC 7662 introspection endpoint."""

from __future__ import annotations

import asyncio

import httpx

from bearer_grpc._verifier.http_aio import HttpClient
from bearer_grpc._verifier.issuer import (
    IntrospectionLink,
    accept_introspection,
    introspection_request,
)
from bearer_grpc.core.discovery import MAX_INTROSPECTION_BYTES
from bearer_grpc.core.errors import FetchError, VerifierUnavailable
from bearer_grpc.core.tokens import Principal
from bearer_grpc.core.verification import LocalVerification


class Introspector:
    """Asks an introspection endpoint about each token the cache does not hold.

    The asyncio twin: one HTTP client per event loop, opened on first use.

    Args:
        local: The verification state (its cache keeps the answers).
        link: The endpoint and this service's credentials.
    """

    def __init__(self, local: LocalVerification, link: IntrospectionLink) -> None:
        self.local = local
        self.link = link
        self.closed = False
        self._clients: dict[asyncio.AbstractEventLoop, HttpClient] = {}

    async def verify(self, token: str) -> Principal:
        """The caller ``token`` stands for, according to the endpoint.

        Raises:
            VerifierUnavailable: Closed, the endpoint cannot be reached or answered
                unusably.
            AuthError: The token is not active, or not for this audience.
        """
        if self.closed:
            raise VerifierUnavailable()
        loop = asyncio.get_running_loop()
        http = self._clients.get(loop)
        if http is None:
            for old in [old for old in self._clients if old.is_closed()]:
                del self._clients[old]
            http = self._clients[loop] = HttpClient(self.link.http)
        headers, form = introspection_request(self.link, token)
        try:
            answer = await http.send(
                "POST", self.link.url, headers, MAX_INTROSPECTION_BYTES, form=form
            )
        except (httpx.HTTPError, FetchError, RuntimeError) as err:
            raise VerifierUnavailable() from err
        return accept_introspection(self.local, self.link, token, answer)

    def close(self) -> None:
        """Refuse every token from now on (``aclose`` also closes the connections)."""
        self.closed = True

    async def aclose(self) -> None:
        """Refuse every token from now on and close this loop's connections."""
        self.closed = True
        http = self._clients.pop(asyncio.get_running_loop(), None)
        if http is not None:
            await http.aclose()
