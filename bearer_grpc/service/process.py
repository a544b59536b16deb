"""What every long-running ``bearer-grpc`` server shares (``serve`` and ``authz``).

- :class:`ServeConfig`: where and how to listen (address, TLS, grace on SIGTERM, the
  metrics address), with every default documented.
- :func:`bind`: the server's port, plaintext or TLS as configured.
- :class:`MetricsEndpoint`: a Prometheus registry of its own and the HTTP endpoint that
  serves it at ``/metrics``.
- :func:`run_until_signalled`: start, wait for SIGTERM or SIGINT, stop gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import CollectorRegistry, start_http_server

if TYPE_CHECKING:
    import ssl

    from bearer_grpc.service.http import HttpLimits

log = logging.getLogger("bearer_grpc.server")


@dataclass(frozen=True)
class ServeConfig:
    """Where and how to listen.

    Attributes:
        listen: ``HOST:PORT`` to bind (port 0 picks a free port). Default ``127.0.0.1:50051``.
        tls_cert: PEM certificate chain for TLS; plaintext when None.
        tls_key: PEM private key of ``tls_cert``.
        tls_client_ca: PEM CA bundle; when given, clients must present a certificate it
            signed (mTLS).
        grace: Seconds in-flight calls get to finish after SIGTERM. Default 10.
        metrics_listen: ``HOST:PORT`` (or ``:PORT``, loopback) to serve Prometheus metrics
            at ``/metrics``; off when None (the default).
        http_listen: ``HOST:PORT`` (or ``:PORT``, loopback) to serve the TokenService's
            OAuth 2.0 HTTP face (discovery, JWKS, token, revocation, introspection); off
            when None (the default). It serves HTTPS with ``tls_cert``/``tls_key`` (and
            requires client certificates with ``tls_client_ca``), as the gRPC port does.
        http_limits: Size and time limits of the HTTP face (the defaults when None).
    """

    listen: str = "127.0.0.1:50051"
    tls_cert: Path | None = None
    tls_key: Path | None = field(default=None, repr=False)
    tls_client_ca: Path | None = None
    grace: float = 10.0
    metrics_listen: str | None = None
    http_listen: str | None = None
    http_limits: HttpLimits | None = None

    def __post_init__(self) -> None:
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"--listen must be HOST:PORT with a port of 0-65535: {self.listen!r}")
        if self.grace < 0:
            raise ValueError("--grace must not be negative")
        if self.metrics_listen is not None:
            parse_listen(self.metrics_listen)
        if self.http_listen is not None:
            parse_listen(self.http_listen)

    def credentials(self) -> grpc.ServerCredentials | None:
        """Server credentials for TLS/mTLS, or None for plaintext.

        Raises:
            ValueError: Only one of certificate and key given, or a client CA without TLS.
            OSError: A file cannot be read.
        """
        if self.tls_cert is None and self.tls_key is None:
            if self.tls_client_ca is not None:
                raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
            return None
        if self.tls_cert is None or self.tls_key is None:
            raise ValueError("--tls-cert and --tls-key go together")
        ca = self.tls_client_ca.read_bytes() if self.tls_client_ca else None
        return grpc.ssl_server_credentials(
            [(self.tls_key.read_bytes(), self.tls_cert.read_bytes())],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )

    def http_ssl_context(self) -> ssl.SSLContext | None:
        """TLS of the HTTP face from the same files, or None for plain HTTP."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        from bearer_grpc.service.http import server_ssl_context

        ca = str(self.tls_client_ca) if self.tls_client_ca is not None else None
        return server_ssl_context(str(self.tls_cert), str(self.tls_key), ca)


def bind(server: grpc.aio.Server, config: ServeConfig) -> int:
    """Add ``config.listen`` to ``server`` (TLS when configured); the bound port.

    Raises:
        ValueError: The address cannot be bound, or bad TLS options.
        OSError: A TLS file cannot be read.
    """
    credentials = config.credentials()
    try:
        if credentials is None:
            return server.add_insecure_port(config.listen)
        return server.add_secure_port(config.listen, credentials)
    except RuntimeError as err:  # grpc's way of saying the address cannot be bound
        raise ValueError(f"cannot listen on {config.listen}") from err


class MetricsEndpoint:
    """A metrics registry of its own and, optionally, the HTTP endpoint serving it.

    Never the global registry, so several servers, and tests, can live in one process.

    Attributes:
        registry: Where the metrics of this server are registered.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._http: tuple[WSGIServer, threading.Thread] | None = None
        self._http_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(http={'on' if self._http else 'off'})"

    def serve(self, config: ServeConfig) -> int:
        """Serve ``/metrics`` at ``config.metrics_listen`` (logged); the port, 0 when off.

        Raises:
            ValueError: The address cannot be bound.
        """
        if config.metrics_listen is None:
            return 0
        port = self.start_http(config.metrics_listen)
        log.info("metrics listening", extra={"listen": config.metrics_listen, "port": port})
        return port

    def start_http(self, listen: str) -> int:
        """Serve ``/metrics`` over HTTP on a daemon thread.

        Args:
            listen: ``HOST:PORT`` (``[::1]:PORT`` for IPv6), or ``:PORT`` or ``PORT`` for
                the loopback interface. Port 0 picks a free port. The endpoint has no
                authentication: keep it on loopback or a private network.

        Returns:
            The bound port.

        Raises:
            ValueError: ``listen`` is not HOST:PORT, or the address cannot be bound.
            RuntimeError: Already serving.
        """
        host, port = parse_listen(listen)
        with self._http_lock:
            if self._http is not None:
                raise RuntimeError("metrics are already served over HTTP")
            try:
                server, thread = start_http_server(port, addr=host, registry=self.registry)
            except OSError as err:
                raise ValueError(f"cannot listen for metrics on {listen}") from err
            self._http = (server, thread)
            return int(server.server_port)

    def stop_http(self) -> None:
        """Stop serving ``/metrics`` (nothing happens when not serving)."""
        with self._http_lock:
            http, self._http = self._http, None
        if http is not None:
            server, thread = http
            server.shutdown()
            server.server_close()
            thread.join(5)


async def run_until_signalled(
    start: Callable[[], Awaitable[Any]], stop: Callable[[], Awaitable[None]]
) -> None:
    """Run a server: ``start()``, wait for SIGTERM or SIGINT, then ``stop()``."""
    await start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("shutting down")
    await stop()


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``HOST:PORT``, ``[IPV6]:PORT``, ``:PORT`` or ``PORT`` into host and port.

    The last two forms are on loopback.

    Raises:
        ValueError: Not one of those forms, or a port outside 0-65535.
    """
    host, _, port = listen.rpartition(":")
    host = host or "127.0.0.1"
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"metrics address must be HOST:PORT with a port of 0-65535: {listen!r}")
    return host, int(port)
