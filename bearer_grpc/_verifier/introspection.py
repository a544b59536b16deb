"""How a sync verifier checks opaque tokens with an RFC 7662 introspection endpoint."""

from __future__ import annotations

import httpx

from bearer_grpc._verifier.http import HttpClient
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

    Args:
        local: The verification state (its cache keeps the answers).
        link: The endpoint and this service's credentials.
    """

    def __init__(self, local: LocalVerification, link: IntrospectionLink) -> None:
        self.local = local
        self.link = link
        self.closed = False
        self._http = HttpClient(link.http)

    def verify(self, token: str) -> Principal:
        """The caller ``token`` stands for, according to the endpoint.

        Raises:
            VerifierUnavailable: The endpoint cannot be reached or answered unusably.
            AuthError: The token is not active, or not for this audience.
        """
        headers, form = introspection_request(self.link, token)
        try:
            answer = self._http.send(
                "POST", self.link.url, headers, MAX_INTROSPECTION_BYTES, form=form
            )
        except (httpx.HTTPError, FetchError, RuntimeError) as err:
            raise VerifierUnavailable() from err
        return accept_introspection(self.local, self.link, token, answer)

    def close(self) -> None:
        """Close the connections (idempotent)."""
        self.closed = True
        self._http.close()
