"""The HTTP face: an aiohttp application on the TokenService's event loop.

Routes (under the issuer URL's path): discovery at both well-known paths, ``GET /jwks``,
``POST /token``, ``POST /revoke`` and ``POST /introspect``. Every answer that is not a
success of discovery or JWKS is JSON with ``Cache-Control: no-store``; every request ends
with one access-log line (method and path, peer, status, OAuth error, duration: never a
token, secret or password) and counts in the metrics.

**Limits.** aiohttp parses HTTP; it is told the limits: a body of at most
:data:`MAX_BODY_BYTES` (413), request and header lines of at most
:data:`MAX_FIELD_BYTES` and :data:`MAX_HEADERS` headers (aiohttp answers 400 or 431), a
request's headers must arrive within :data:`HEADER_TIMEOUT` of the connection opening or
of the previous answer (aiohttp closes idle and slow connections alike), and its body
within :data:`~bearer_grpc.service.http.endpoints.BODY_TIMEOUT` (408).
"""

from __future__ import annotations

import json
import logging
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from bearer_grpc.core.keys import PublicKeySet
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.http.discovery import Endpoints, discovery_document
from bearer_grpc.service.http.endpoints import (
    BODY_TIMEOUT,
    NO_STORE,
    Issue,
    OAuthEndpoints,
)
from bearer_grpc.service.http.errors import OAuthError
from bearer_grpc.service.http.jwks import JwksAnswer
from bearer_grpc.service.metrics import ServiceMetrics, parse_listen

access_log = logging.getLogger("bearer_grpc.access")
log = logging.getLogger("bearer_grpc.service")

MAX_BODY_BYTES: Final = 16 * 1024
"""Largest request body (a token to introspect is at most 8 KiB, percent-encoded)."""
MAX_FIELD_BYTES: Final = 8190
"""Longest request line or header line."""
MAX_HEADERS: Final = 64
"""Most header lines in a request."""
HEADER_TIMEOUT: Final = 10.0
"""Seconds a connection may stay without a complete request (idle or slow alike)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _ProtocolLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The connection-level log of aiohttp, as one INFO line naming the error class.

    It reports requests the parser refused and broken connections; never a traceback, whose
    text may quote what the client sent (a header line, with whatever secret it held).
    """

    def log(self, level: int, msg: object, *args: object, **kwargs: object) -> None:
        """Log at INFO (DEBUG stays DEBUG), without the exception's text."""
        error = kwargs.pop("exc_info", None)
        if isinstance(error, BaseException):
            name = type(error).__name__
        elif error:
            name = getattr(sys.exc_info()[0], "__name__", "")
        else:
            name = ""
        level = logging.DEBUG if level <= logging.DEBUG else logging.INFO
        if self.logger.isEnabledFor(level):
            self.logger.log(level, "bad HTTP request", extra={"error": name or None})


@dataclass(frozen=True)
class HttpLimits:
    """The limits of :mod:`this module <bearer_grpc.service.http.app>`, with its defaults.

    Attributes:
        max_body: Largest request body, bytes.
        header_timeout: Seconds a connection may stay without a complete request.
        body_timeout: Seconds a request's body may take to arrive.
    """

    max_body: int = MAX_BODY_BYTES
    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT


class _Published:
    """The JWKS answer and discovery document for the key set last published.

    Rebuilt only when the authority's key set changes (it is replaced, never modified).
    """

    def __init__(self, authority: TokenAuthority, endpoints: Endpoints) -> None:
        self._authority = authority
        self._endpoints = endpoints
        self._keys: PublicKeySet | None = None
        self.jwks = JwksAnswer(b"", "", "")
        self.discovery = b""

    def refresh(self) -> None:
        keys = self._authority.verifier.keys
        if keys is self._keys:
            return
        settings = self._authority.settings
        jwks = self._authority.jwks()
        algorithms = [key["alg"] for key in json.loads(jwks)["keys"]]
        document = discovery_document(self._endpoints, algorithms)
        self.jwks = JwksAnswer.of(jwks, publish_delay=settings.key_publish_delay)
        self.discovery = json.dumps(document, indent=1).encode()
        self._keys = keys


class HttpFace:
    """The TokenService's HTTP face, served on the running event loop.

    Args:
        authority: The rules (started).
        issue: Issues tokens as IssueToken does.
        metrics: The service's metrics.
        notify: Wakes revocation watchers after a revocation.
        listen: ``HOST:PORT`` to bind (port 0: a free one).
        ssl_context: TLS for HTTPS, or None for plain HTTP.
        limits: Size and time limits.
    """

    def __init__(
        self,
        authority: TokenAuthority,
        *,
        issue: Issue,
        metrics: ServiceMetrics,
        notify: Callable[[], None],
        listen: str,
        ssl_context: ssl.SSLContext | None = None,
        limits: HttpLimits | None = None,
    ) -> None:
        self._host, self._port = parse_listen(listen)
        self._ssl = ssl_context
        self._limits = limits or HttpLimits()
        self._metrics = metrics
        self._endpoints = Endpoints(authority.settings.issuer)
        self._published = _Published(authority, self._endpoints)
        self._oauth = OAuthEndpoints(
            authority, issue, metrics, notify, body_timeout=self._limits.body_timeout
        )
        self._names: dict[str, str] = {}
        self._runner: web.AppRunner | None = None

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=self._limits.max_body, middlewares=[self._middleware])
        endpoints = self._endpoints
        for path in endpoints.discovery_paths:
            app.router.add_get(path, self._discovery)
            self._names[path] = "discovery"
        posts = {
            "token": self._oauth.token,
            "revoke": self._oauth.revoke,
            "introspect": self._oauth.introspect,
        }
        for name, handler in posts.items():
            app.router.add_post(endpoints.path(name), handler)
            self._names[endpoints.path(name)] = name
        app.router.add_get(endpoints.path("jwks"), self._jwks)
        self._names[endpoints.path("jwks")] = "jwks"
        app.on_response_prepare.append(_server_header)
        return app

    async def start(self) -> int:
        """Bind and serve; returns the bound port.

        Raises:
            ValueError: The address cannot be bound.
        """
        runner = web.AppRunner(
            self._app(),
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self._limits.header_timeout,
            max_line_size=MAX_FIELD_BYTES,
            max_field_size=MAX_FIELD_BYTES,
            max_headers=MAX_HEADERS,
            logger=_ProtocolLog(logging.getLogger("bearer_grpc.http")),
        )
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port, ssl_context=self._ssl, reuse_port=False)
        try:
            await site.start()
        except OSError as err:
            await runner.cleanup()
            raise ValueError(f"cannot listen for HTTP on {self._host}:{self._port}") from err
        self._runner = runner
        return int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop accepting connections and close the open ones."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _discovery(self, request: web.Request) -> web.Response:
        self._published.refresh()
        headers = {"Cache-Control": self._published.jwks.cache_control}
        return web.Response(
            body=self._published.discovery, content_type="application/json", headers=headers
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        self._published.refresh()
        answer = self._published.jwks
        headers = {"ETag": answer.etag, "Cache-Control": answer.cache_control}
        if answer.not_modified(request.headers.get("If-None-Match")):
            return web.Response(status=304, headers=headers)
        return web.Response(body=answer.body, content_type="application/json", headers=headers)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        error = ""
        try:
            response = await handler(request)
        except OAuthError as err:
            error, response = err.error, _error_response(err)
        except web.HTTPException as err:  # routing (404, 405) and aiohttp's own refusals
            oauth = _from_http(err)
            error, response = oauth.error, _error_response(oauth)
            if err.status == 405:
                response.headers["Allow"] = err.headers.get("Allow", "")
        except Exception:
            log.exception("internal error", extra={"method": f"{request.method} HTTP"})
            oauth = OAuthError("server_error", "internal error", status=500)
            error, response = oauth.error, _error_response(oauth)
        endpoint = self._names.get(request.path, "other")
        self._metrics.http_request(endpoint, response.status)
        level = logging.DEBUG if endpoint in ("jwks", "discovery") and not error else logging.INFO
        if access_log.isEnabledFor(level):
            access_log.log(
                level,
                "call",
                extra={
                    "method": f"{request.method} {endpoint}",
                    "peer": request.remote,
                    "code": error or "OK",
                    "status": response.status,
                    "interface": "http",
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                },
            )
        return response


def _from_http(err: web.HTTPException) -> OAuthError:
    if err.status == 405:
        return OAuthError("invalid_request", "method not allowed", status=405)
    if err.status == 404:
        return OAuthError("not_found", "no such endpoint", status=404)
    if err.status == 413:
        return OAuthError("invalid_request", "request body too large", status=413)
    return OAuthError("invalid_request", "bad request", status=err.status)


def _error_response(error: OAuthError) -> web.Response:
    return web.Response(
        body=error.body(),
        status=error.status,
        content_type="application/json",
        headers={**NO_STORE, **error.headers},
    )


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    """Name no library or version in the ``Server`` header."""
    response.headers["Server"] = "bearer-grpc"


def server_ssl_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """TLS for the HTTP face from the same PEM files as the gRPC server's.

    Mutual TLS when ``client_ca`` is given.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
