"""The sync HTTP client of the verifiers that talk to an identity provider (httpx)."""

from __future__ import annotations

import time

import httpx

from bearer_grpc._verifier.issuer import Flow, HttpAnswer, HttpGet, HttpSettings, client_options
from bearer_grpc.core.discovery import Body


class HttpClient:
    """Sends what a :data:`~.issuer.Flow` asks for, reading at most each answer's cap.

    Args:
        settings: TLS and timeouts.
    """

    def __init__(self, settings: HttpSettings) -> None:
        self._client = httpx.Client(**client_options(settings))
        self._seconds = settings.connect_timeout + settings.read_timeout

    def drive(self, flow: Flow) -> float:
        """Run ``flow`` to its end and return its result.

        Raises:
            httpx.HTTPError: A request failed (connection, TLS, timeout).
            BearerGrpcError: The flow refused an answer.
        """
        request = next(flow)
        while True:
            answer = self.get(request)
            try:
                request = flow.send(answer)
            except StopIteration as done:
                return float(done.value)

    def get(self, request: HttpGet) -> HttpAnswer:
        """One GET, its body capped at ``request.limit``."""
        return self.send("GET", request.url, request.headers, request.limit)

    def send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        limit: int,
        form: dict[str, str] | None = None,
    ) -> HttpAnswer:
        """One request; the body is read only when the status is 200.

        At most ``limit`` bytes of the body are read.

        Raises:
            httpx.HTTPError: The request failed.
            FetchError: The answer is larger than ``limit``.
        """
        with self._client.stream(method, url, headers=headers, data=form) as response:
            declared = response.headers.get("content-length")
            body = Body(limit, declared, clock=time.monotonic, seconds=self._seconds)
            if response.status_code == 200:
                for chunk in response.iter_raw():
                    body.add(chunk)
            return HttpAnswer(
                response.status_code,
                body.bytes(),
                response.headers.get("etag"),
                response.headers.get("cache-control"),
            )

    def close(self) -> None:
        """Close the connections."""
        self._client.close()
