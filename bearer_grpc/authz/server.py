"""A running ``bearer-grpc authz``: the ``Check`` servicer on a ``grpc.aio`` server.

It serves ``grpc.health.v1.Health`` next to ``Check`` (SERVING once the verifier has
started, NOT_SERVING from the first moment of a graceful stop, so Envoy's health checks
move away before the port closes), Prometheus metrics when asked, and stops gracefully
on SIGTERM: in-flight checks get ``grace`` seconds. The verifier starts with the server
(keys and the revocation backlog are awaited up to its ``startup_timeout``) and is
closed with it.
"""

from __future__ import annotations

import logging
from typing import Final

import grpc
from envoy.service.auth.v3 import external_auth_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bearer_grpc._verifier.protocol_aio import SupportsVerify
from bearer_grpc.authz.metrics import AuthzMetrics
from bearer_grpc.authz.servicer import SERVICE_NAME, AuthorizationServicer
from bearer_grpc.core.policy import Policy
from bearer_grpc.service.process import ServeConfig, bind, run_until_signalled

log = logging.getLogger("bearer_grpc.authz")

MAX_MESSAGE_BYTES: Final = 256 * 1024
"""Largest ``CheckRequest`` accepted: Envoy's request headers are at most 60 KiB by
default, and the documented configuration sends no body."""


class AuthzServer:
    """``Check`` and health checking on one port; :meth:`start`, then :meth:`stop`.

    Args:
        verifier: Checks tokens (``bearer_grpc.aio.Verifier``, or any async verifier).
        policy: The access rules.
        config: Where and how to listen (``ServeConfig``; its TLS options apply too).
        metrics: Where decisions are counted (a new :class:`AuthzMetrics` when None).
    """

    def __init__(
        self,
        verifier: SupportsVerify,
        policy: Policy,
        config: ServeConfig,
        *,
        metrics: AuthzMetrics | None = None,
    ) -> None:
        self.verifier = verifier
        self.config = config
        self.servicer = AuthorizationServicer(verifier, policy, metrics)
        self.health = health.aio.HealthServicer()
        self.port = 0
        self.metrics_port = 0
        self._server: grpc.aio.Server | None = None

    @property
    def metrics(self) -> AuthzMetrics:
        """The decision counters."""
        return self.servicer.metrics

    async def start(self) -> int:
        """Start the verifier, bind, serve. Returns the bound port.

        Raises:
            ValueError: The address (or the metrics address) cannot be bound.
        """
        start = getattr(self.verifier, "start", None)
        if start is not None:
            await start()
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ]
        )
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(self.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        self.port = bind(server, self.config)
        self.metrics_port = self.metrics.serve(self.config)
        await server.start()
        self._server = server
        for service in ("", SERVICE_NAME):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("listening", extra={"listen": self.config.listen, "port": self.port})
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, let in-flight checks finish, close the verifier."""
        await self.health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(self.config.grace if grace is None else grace)
        self.metrics.stop_http()
        close = getattr(self.verifier, "aclose", None)
        if close is not None:
            await close()
        log.info("stopped")


async def serve_authz(verifier: SupportsVerify, policy: Policy, config: ServeConfig) -> None:
    """Run ``bearer-grpc authz`` until SIGTERM or SIGINT, then stop gracefully."""
    server = AuthzServer(verifier, policy, config)
    await run_until_signalled(server.start, server.stop)
