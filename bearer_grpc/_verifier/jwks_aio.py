"""How an asyncio verifier keeps an identity provider's keys: one task per event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import httpx

from bearer_grpc._channel import LinkLog
from bearer_grpc._verifier.http_aio import HttpClient
from bearer_grpc._verifier.issuer import IssuerLink, KeyFetch, log, refreshed
from bearer_grpc._verifier.keys import RefetchGate
from bearer_grpc._verifier.loop_session import LoopSession, PerLoop
from bearer_grpc.core.errors import BearerGrpcError
from bearer_grpc.core.verification import LocalVerification


@dataclass(kw_only=True)
class _Session(LoopSession):
    """The key refreshing of a verifier on one event loop."""

    http: HttpClient
    refetch: asyncio.Task[float | None] | None = None


class JwksFollower(PerLoop[_Session]):
    """Keeps the keys of an identity provider for an asyncio verifier.

    The same rules as the sync :class:`bearer_grpc._verifier.jwks.JwksFollower`, on a
    task of the loop that uses the verifier (started on first use); unknown-``kid``
    refetches are single-flight: one task, awaited by every caller.

    Args:
        local: The in-memory verification state it keeps up to date.
        link: The identity provider.
    """

    def __init__(self, local: LocalVerification, link: IssuerLink) -> None:
        super().__init__()
        self.local = local
        self.link = link
        self._fetch = KeyFetch(local, link)
        self._gate = RefetchGate(link.refetch_interval)
        self._log = LinkLog(log, link.target, "identity provider")

    def _open(self, loop: asyncio.AbstractEventLoop) -> _Session:
        deadline = time.monotonic() + self.link.startup_timeout
        session = _Session(loop=loop, http=HttpClient(self.link.http), startup_deadline=deadline)
        session.task = loop.create_task(self._run(session), name="bearer-grpc-jwks")
        return session

    async def start(self) -> None:
        """Start on the running loop and wait for the first keys (``startup_timeout``)."""
        session = self.ensure_started()
        if session is not None:
            await self.ready(session)

    async def ready(self, session: _Session) -> bool:
        """Whether keys arrived (until then waits for them, not past the startup deadline)."""
        remaining = session.startup_deadline - time.monotonic()
        if self.local.keys is None and remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.first_keys.wait(), remaining)
        return self.local.keys is not None

    async def refetch_keys(self, session: _Session, kid: str | None) -> None:
        """Refetch the keys for the unknown ``kid`` unless :class:`RefetchGate` says no.

        Every concurrent caller awaits the same fetch.
        """
        task = session.refetch
        if task is None or task.done():
            if not self._gate.try_pass(kid):
                return
            task = session.refetch = session.loop.create_task(self._refresh(session))
        await asyncio.shield(task)

    async def aclose(self) -> None:
        """Cancel the task and wait for it and for the connections to close."""
        self.close()
        session = self.session
        if session is None or session.loop is not asyncio.get_running_loop():
            return
        tasks = [t for t in (session.task, session.refetch) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await session.http.aclose()

    async def _refresh(self, session: _Session) -> float | None:
        """One refresh: seconds until the next, None after a failure."""
        outcome: float | BaseException
        try:
            outcome = await session.http.drive(self._fetch.flow())
        except (httpx.HTTPError, BearerGrpcError, RuntimeError) as err:
            outcome = err  # RuntimeError: the client was closed meanwhile
        ok = refreshed(self._log, outcome, quiet=self.closed)
        if not ok or isinstance(outcome, BaseException):
            return None
        session.first_keys.set()
        return outcome

    async def _run(self, session: _Session) -> None:
        delays = self.link.backoff.delays()
        try:
            while True:
                refetch = session.refetch
                if refetch is not None and not refetch.done():
                    await asyncio.wait([refetch])  # one fetch at a time
                session.refetch = session.loop.create_task(self._refresh(session))
                after = await asyncio.shield(session.refetch)
                if after is None:
                    await asyncio.sleep(next(delays))
                else:
                    delays = self.link.backoff.delays()
                    await asyncio.sleep(after)
        finally:
            await session.http.aclose()
