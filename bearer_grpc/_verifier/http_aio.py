"""The asyncio HTTP client of the verifiers that talk to an identity provider (httpx)."""

from __future__ import annotations

import time

import httpx

from bearer_grpc._verifier.issuer import Flow, HttpAnswer, HttpGet, HttpSettings, client_options
from bearer_grpc.core.discovery import Body


class HttpClient:
    """Sends what a :data:`~.issuer.Flow` asks for, reading at most each answer's cap.

    The asyncio twin of :class:`bearer_grpc._verifier.http.HttpClient`.

    Args:
        settings: TLS and timeouts.
    """

    def __init__(self, settings: HttpSettings) -> None:
        self._client = httpx.AsyncClient(**client_options(settings))
        self._seconds = settings.connect_timeout + settings.read_timeout

    async def drive(self, flow: Flow) -> float:
        """Run ``flow`` to its end and return its result.

        Raises:
            httpx.HTTPError: A request failed (connection, TLS, timeout).
            BearerGrpcError: The flow refused an answer.
        """
        request = next(flow)
        while True:
            answer = await self.get(request)
            try:
                request = flow.send(answer)
            except StopIteration as done:
                return float(done.value)

    async def get(self, request: HttpGet) -> HttpAnswer:
        """One GET, its body capped at ``request.limit``."""
        return await self.send("GET", request.url, request.headers, request.limit)

    async def send(
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
        async with self._client.stream(method, url, headers=headers, data=form) as response:
            declared = response.headers.get("content-length")
            body = Body(limit, declared, clock=time.monotonic, seconds=self._seconds)
            if response.status_code == 200:
                async for chunk in response.aiter_raw():
                    body.add(chunk)
            return HttpAnswer(
                response.status_code,
                body.bytes(),
                response.headers.get("etag"),
                response.headers.get("cache-control"),
            )

    async def aclose(self) -> None:
        """Close the connections."""
        await self._client.aclose()
