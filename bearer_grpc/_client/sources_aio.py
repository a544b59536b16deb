"""Token sources for asyncio clients, with ``async token()``.

They have the names of :mod:`bearer_grpc._client.sources`.

:class:`ClientCredentials` requests with the ``grpc.aio`` stub on the caller's event
loop (never blocking it) and renews in a task; concurrent callers share one request
(one task, awaited through ``asyncio.shield``). The request, the answer check, the
error texts and the timing rules are shared with the sync flavour
(:mod:`bearer_grpc._client.common`).

Construction starts nothing, so a source can be built before any loop exists.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Protocol

import grpc

from bearer_grpc._channel import ConnectionAio, silent_link
from bearer_grpc._client.common import (
    MAX_IDLE_WAIT,
    ClientCredentialsBase,
    StaticTokenBase,
    failure_text,
    issued_token,
)
from bearer_grpc._closing import ClosingAio
from bearer_grpc.core.errors import BearerGrpcError
from bearer_grpc.core.renewal import Failed, Ready
from bearer_grpc.v1 import token_service_pb2 as pb


class TokenSource(Protocol):
    """Where an asyncio client gets its bearer token."""

    async def token(self) -> str:
        """Return a usable token (may wait for the first one; never for a renewal)."""
        ...

    def invalidate(self, token: str) -> None:
        """Hint that a server rejected ``token`` as expired or revoked."""
        ...


class TokenRequestError(grpc.aio.AioRpcError, BearerGrpcError):
    """No usable access token could be had from the token service.

    A ``grpc.aio.AioRpcError``: an intercepted call fails with it as with any other
    status, and ``await call.code()`` reports it. ``code()`` is the token service's
    status (UNAVAILABLE when unreachable, UNAUTHENTICATED when it rejects the client
    credentials); ``details()`` says which service answered what, never the secret.

    Args:
        target: The token service address.
        error: What the last request failed with (also the ``__cause__``).
    """

    def __init__(self, target: str, error: BaseException) -> None:
        code, details = failure_text(target, error)
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)
        self.message = details
        self.target = target


class StaticToken(StaticTokenBase):
    """A token that comes from elsewhere, used as it is (``repr`` hides it).

    Args:
        token: The bearer token, without ``Bearer``.

    Raises:
        ValueError: ``token`` is not one b64token.
    """

    async def token(self) -> str:
        """Return the token."""
        return self._token


@dataclass
class _Session:
    """A source's channel and tasks on one event loop."""

    loop: asyncio.AbstractEventLoop
    connection: ConnectionAio
    wake: asyncio.Event
    renewer: asyncio.Task[None] | None = None
    request: asyncio.Task[None] | None = None

    def tasks(self) -> list[asyncio.Task[None]]:
        """The tasks still running."""
        return [t for t in (self.renewer, self.request) if t is not None and not t.done()]

    def cancel(self) -> None:
        """Cancel the tasks, from any thread (nothing if the loop is gone)."""
        if self.loop.is_closed():
            return
        for task in self.tasks():
            self.loop.call_soon_threadsafe(task.cancel)


class ClientCredentials(ClientCredentialsBase, ClosingAio):
    """Access tokens for a service, from the TokenService's client-credentials grant.

    The asyncio flavour of :class:`bearer_grpc.ClientCredentials`, with the same
    arguments (documented there) and rules: one shared request for concurrent first
    calls, renewal in a task ``renew_before`` ahead of expiry (calls never wait for it),
    capped jittered backoff while the service is down, :class:`TokenRequestError` when
    no usable token can be had. Nothing starts before the first ``await token()``
    inside a running loop; ``await aclose()`` (or ``async with``) stops the task and
    the channel. One source serves one loop at a time; used from a new loop after the
    old one closed, it starts again there.
    """

    def _setup(self) -> None:
        self._closed = False
        self._session: _Session | None = None

    async def token(self) -> str:
        """Return a usable access token.

        Waits only when there is none yet (the first call, or after the last one
        expired or was invalidated), and then for one shared request.

        Raises:
            TokenRequestError: No usable token, and the last request failed (the next
                one is due after the backoff delay).
            RuntimeError: The source was closed, or is in use on another running loop.
        """
        session = self._session_here()
        while True:
            if self._closed:
                raise RuntimeError("ClientCredentials is closed")
            step = self._renewal.decide(self._config.clock())
            if isinstance(step, Ready):
                if step.renew:
                    session.wake.set()
                return step.token
            if isinstance(step, Failed):
                raise TokenRequestError(self._config.target, step.error) from step.error
            try:
                await asyncio.shield(self._shared_request(session))
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not self._closed or (task is not None and task.cancelling()):
                    raise  # our caller was cancelled, not the request by aclose()

    def invalidate(self, token: str) -> None:
        """Drop ``token`` if it is the cached one; the next :meth:`token` fetches anew."""
        if self._renewal.invalidate(token) and self._session is not None:
            self._session.wake.set()

    def close(self) -> None:
        """Stop renewing (idempotent, any thread); the task closes the channel.

        Prefer ``await aclose()`` inside the loop, which also waits for that.
        """
        self._closed = True
        if self._session is not None:
            self._session.cancel()

    async def aclose(self) -> None:
        """Stop renewing; wait until the tasks ended and the channel is closed."""
        self.close()
        session = self._session
        if session is None or session.loop is not asyncio.get_running_loop():
            return
        tasks = session.tasks()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await session.connection.close()

    def _session_here(self) -> _Session:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and session.loop is loop:
            return session
        if session is not None and not session.loop.is_closed():
            raise RuntimeError("ClientCredentials is in use on another event loop")
        if self._closed:
            raise RuntimeError("ClientCredentials is closed")
        session = _Session(loop, ConnectionAio(self._config.endpoint), asyncio.Event())
        session.renewer = loop.create_task(self._renew(session), name="bearer-grpc-renewal")
        self._session = session
        return session

    def _shared_request(self, session: _Session) -> asyncio.Task[None]:
        if session.request is None or session.request.done():
            session.request = session.loop.create_task(self._request_token(session))
        return session.request

    async def _request_token(self, session: _Session) -> None:
        config = self._config
        requested_at = config.clock()
        outcome: tuple[str, int] | BaseException
        try:
            response: pb.IssueTokenResponse = await session.connection.stub.IssueToken(
                config.request, timeout=config.timeout
            )
            outcome = issued_token(response)
        except Exception as err:  # callers get the error; the task must not fail
            outcome = err
        if not self._closed:
            self._record(outcome, requested_at)
            if silent_link(outcome):  # a silently dead connection: gRPC would keep using it
                await session.connection.replace()

    async def _renew(self, session: _Session) -> None:
        try:
            while True:
                now = self._config.clock()
                if self._renewal.due(now):
                    await self._shared_request(session)
                    continue
                session.wake.clear()
                wait = min(self._renewal.seconds_until_due(now), MAX_IDLE_WAIT)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(session.wake.wait(), wait)
        finally:
            await session.connection.close()
