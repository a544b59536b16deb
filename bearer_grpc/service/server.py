"""``bearer-grpc serve``: the TokenService, the AdminService and the OAuth 2.0 HTTP face.

The gRPC services come with health, reflection, TLS and graceful stop; with
``http_listen``, the HTTP face runs on the same event loop and authority. Every
call passes bearer_grpc's own interceptor, whose policy guards the AdminService
(``admin_auth``) and leaves the TokenService to its own rules.

The server is a ``grpc.aio`` server, so that many long-lived ``WatchRevocations``
streams cost no threads. A background loop reads the store for keys and revocations
other processes wrote, wakes watchers, and reports NOT_SERVING on the health service
while the store cannot be reached. It reads when the store's change listener wakes it
(PostgreSQL ``LISTEN/NOTIFY``: a revocation committed by any replica arrives within
milliseconds), after the listener (re)connects, and at the latest every
``sync_interval`` (the safety net: a lost notification delays a change, never loses
it, since every read resumes after the last sequence read). The same loop prunes
expired rows and, when asked to, stages scheduled key rotations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.service import admin_api
from bearer_grpc.service.admin_auth import ADMIN_SERVICE_NAME, admin_interceptor
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.http import HttpFace
from bearer_grpc.service.http.discovery import check_issuer
from bearer_grpc.service.metrics import ServiceMetrics
from bearer_grpc.service.process import ServeConfig, bind, run_until_signalled
from bearer_grpc.service.revocations import RevocationNotifier
from bearer_grpc.service.servicer import SERVICE_NAME, TokenServiceServicer, add_to_server
from bearer_grpc.store import StoreUnavailable

log = logging.getLogger("bearer_grpc.server")

MAX_MESSAGE_BYTES: Final = 64 * 1024
"""Largest request message accepted; every TokenService request fits well within it."""
HOUSEKEEPING_EVERY: Final = 60.0
"""Seconds between prunes of expired revocations, refresh tokens and keys."""


class TokenServer:
    """A running TokenService: the aio server, its health service and its sync loop.

    Use :meth:`start`, then :meth:`stop` (or :func:`serve` for the whole lifecycle).

    Args:
        authority: The rules and state (``start()`` is called here).
        config: Where and how to listen.
        clock: Wall-clock time source of scheduled key rotations.
        metrics: Where calls and store errors are counted (a new :class:`ServiceMetrics`
            when None); served over HTTP when ``config.metrics_listen`` is set.
    """

    def __init__(
        self,
        authority: TokenAuthority,
        config: ServeConfig,
        *,
        clock: Clock = system_clock,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.authority = authority
        self.config = config
        self._clock = clock
        self.metrics = metrics if metrics is not None else ServiceMetrics()
        self.metrics_port = 0
        self.notifier = RevocationNotifier()
        self.health = health.aio.HealthServicer()
        self.port = 0
        self.http_port = 0
        self._http: HttpFace | None = None
        self._server: grpc.aio.Server | None = None
        self._servicer: TokenServiceServicer | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._store_ok = True
        self._stopping = False
        self._wake = asyncio.Event()
        # The sync loop has a thread of its own: busy request threads never delay it.
        self._sync_pool = ThreadPoolExecutor(1, thread_name_prefix="bearer-grpc-sync")

    async def start(self) -> int:
        """Load state, bind, start serving. Returns the bound port.

        Raises:
            StoreUnavailable: The store cannot be read at start.
            ValueError: An address cannot be bound, or the issuer is no URL for the HTTP
                face.
        """
        if self.config.http_listen is not None:
            check_issuer(self.authority.settings.issuer)
        await asyncio.to_thread(self.authority.start)
        server = grpc.aio.server(
            interceptors=[admin_interceptor(self.authority)],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        self._servicer = TokenServiceServicer(self.authority, self.notifier, metrics=self.metrics)
        add_to_server(self._servicer, server)
        admin_api.add_to_server(
            admin_api.AdminServiceServicer(self.authority, self.notifier), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, ADMIN_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME),
            server,
        )
        self.port = bind(server, self.config)
        self.metrics_port = self.metrics.serve(self.config)
        await server.start()
        self._server = server
        if self.config.http_listen is not None:
            await self._start_http(self.config.http_listen, self._servicer)
        await self._set_serving(True)
        self._sync_task = asyncio.create_task(self._sync_loop(), name="bearer-grpc-sync")
        self._listen_task = asyncio.create_task(self._listen(), name="bearer-grpc-listen")
        log.info(
            "listening",
            extra={
                "listen": self.config.listen,
                "port": self.port,
                "issuer": self.authority.settings.issuer,
            },
        )
        return self.port

    async def _start_http(self, listen: str, servicer: TokenServiceServicer) -> None:
        self._http = HttpFace(
            self.authority,
            issue=servicer.issue,
            metrics=self.metrics,
            notify=lambda: self.notifier.notify(self.authority.revocations.cursor),
            listen=listen,
            ssl_context=self.config.http_ssl_context(),
            limits=self.config.http_limits,
        )
        try:
            self.http_port = await self._http.start()
        except ValueError:
            if self._server is not None:  # nothing half started stays behind
                await self._server.stop(None)
            self.metrics.stop_http()
            raise
        log.info("http listening", extra={"listen": listen, "port": self.http_port})

    async def _set_serving(self, ok: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ok
            else (health_pb2.HealthCheckResponse.NOT_SERVING)
        )
        for service in ("", SERVICE_NAME):
            await self.health.set(service, status)

    async def _listen(self) -> None:
        """Wake the sync loop whenever the store announces a change (until cancelled)."""
        try:
            await self.authority.store.change_listener().listen(self._wake.set)
        except Exception:  # the periodic read still runs: slower, nothing lost
            self.metrics.store_error("listen")
            log.exception("store change listener failed: polling only")

    async def _sync_loop(self) -> None:
        interval = self.authority.settings.sync_interval
        loop = asyncio.get_running_loop()
        housekeeping_due = loop.time()
        key_removals = self.authority.key_removals
        epoch_changes = self.authority.epoch_changes
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            if self._stopping:
                return
            self._wake.clear()  # a change announced during this read wakes the next one
            operation = "sync"
            try:
                await loop.run_in_executor(self._sync_pool, self.authority.sync)
                if loop.time() >= housekeeping_due:
                    operation = "housekeeping"
                    housekeeping_due = loop.time() + HOUSEKEEPING_EVERY
                    removed = await loop.run_in_executor(
                        self._sync_pool, self.authority.housekeeping
                    )
                    if removed:
                        log.info("pruned expired rows", extra={"count": removed})
                if self.authority.settings.rotate_keys_every:
                    operation = "rotate"
                    await loop.run_in_executor(self._sync_pool, self._rotate_if_due)
            except StoreUnavailable:
                self.metrics.store_error(operation)
                if self._store_ok:
                    log.warning("store unavailable: reporting NOT_SERVING")
                    self._store_ok = False
                    await self._set_serving(False)
                continue
            except Exception:
                log.exception("sync failed")
                continue
            if not self._store_ok:
                log.info("store reachable again: reporting SERVING")
                self._store_ok = True
                await self._set_serving(True)
            self.notifier.notify(self.authority.revocations.cursor)
            if self.authority.key_removals != key_removals:
                key_removals = self.authority.key_removals
                log.info("a key is no longer published: ending revocation streams")
                self.notifier.restart()  # verifiers refetch the keys before resuming
            if self.authority.epoch_changes != epoch_changes:
                epoch_changes = self.authority.epoch_changes
                log.info("new revocation epoch: ending revocation streams")
                self.notifier.restart()  # verifiers see the epoch and follow from 0

    def _rotate_if_due(self) -> None:
        """Stage the next signing key if the newest is older than ``rotate_keys_every``.

        The new key reaches this server's key ring on the next read, which its commit
        announces (and so wakes).
        """
        settings = self.authority.settings
        staged = self.authority.keys.rotate_if_due(
            settings.key_algorithm,
            every=settings.rotate_keys_every,
            now=math.floor(self._clock()),
            delay=settings.key_publish_delay,
        )
        if staged is not None:
            log.info("staged scheduled signing key", extra={"kid": staged.kid})

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, stop accepting calls, let in-flight calls finish."""
        await self.health.enter_graceful_shutdown()
        self._stopping = True
        self._wake.set()
        if self._listen_task is not None:
            self._listen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listen_task
        if self._sync_task is not None:
            await self._sync_task  # lets a sync already running in a thread finish first
        self._sync_pool.shutdown(wait=True)
        if self._servicer is not None:
            self._servicer.close()
        if self._http is not None:
            await self._http.stop()
        if self._server is not None:
            await self._server.stop(self.config.grace if grace is None else grace)
        self.metrics.stop_http()
        if self._servicer is not None:
            self._servicer.shutdown()
        log.info("stopped")


async def serve(authority: TokenAuthority, config: ServeConfig) -> None:
    """Run the TokenService until SIGTERM or SIGINT, then stop gracefully."""
    server = TokenServer(authority, config)
    await run_until_signalled(server.start, server.stop)
