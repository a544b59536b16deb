"""How an asyncio verifier follows its TokenService: one task and one channel per loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import grpc

from bearer_grpc._channel import ConnectionAio, LinkLog, silent_link
from bearer_grpc._verifier.base import TokenServiceLink
from bearer_grpc._verifier.keys import RefetchGate, keys_fetched
from bearer_grpc._verifier.loop_session import LoopSession, PerLoop
from bearer_grpc._verifier.remote import accept_remote, remote_request
from bearer_grpc._verifier.revocations import (
    Resume,
    RevocationFeed,
    StreamStart,
    apply_revocation,
    log,
    prune,
    stream_ended,
    stream_start,
    watch_request,
)
from bearer_grpc.core.errors import VerifierUnavailable
from bearer_grpc.core.tokens import Principal
from bearer_grpc.core.verification import LocalVerification
from bearer_grpc.v1 import token_service_pb2 as pb


@dataclass(kw_only=True)
class _Session(LoopSession):
    """The background work of a verifier on one event loop."""

    connection: ConnectionAio
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once a revocation backlog has been applied (on any session of the verifier)."""
    refetch: asyncio.Task[pb.GetJwksResponse | BaseException] | None = None

    async def wait_first_keys(self) -> None:
        """Wait for the first keys and the revocation backlog until the startup deadline.

        Once the deadline has passed, it does not wait at all.
        """
        for event in (self.first_keys, self.caught_up):
            remaining = self.startup_deadline - time.monotonic()
            if remaining > 0 and not event.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)


class Follower(PerLoop[_Session]):
    """Follows a TokenService for an asyncio verifier: one task, one ``grpc.aio`` channel.

    The same loop as the sync follower: fetch the keys (local mode), follow
    ``WatchRevocations`` until the stream ends, prune, back off after a failure.
    Unknown-``kid`` refetches are single-flight: one task, awaited by every caller.

    Args:
        local: The in-memory verification state it keeps up to date.
        link: The TokenService to follow.
    """

    def __init__(self, local: LocalVerification, link: TokenServiceLink) -> None:
        super().__init__()
        self.local = local
        self.link = link
        self._gate = RefetchGate(link.refetch_interval)
        self._log = LinkLog(log, link.target)
        self.feed = RevocationFeed(local, link.target)

    async def _replace_channel(self, session: _Session) -> None:
        """Use a new connection from now on (the old one went silent)."""
        await session.connection.replace()
        log.debug("TokenService silent: new connection", extra={"target": self.link.target})

    def _open(self, loop: asyncio.AbstractEventLoop) -> _Session:
        session = _Session(
            loop=loop,
            connection=ConnectionAio(self.link.endpoint),
            startup_deadline=time.monotonic() + self.link.startup_timeout,
        )
        if self.feed.caught_up:  # last known good from an earlier loop
            session.caught_up.set()
        session.task = loop.create_task(self._run(session), name="bearer-grpc-verifier")
        return session

    async def start(self) -> None:
        """Start on the running loop and wait for the first keys (local mode)."""
        session = self.ensure_started()
        if session is not None and not self.link.remote:
            await session.wait_first_keys()

    async def aclose(self) -> None:
        """Cancel the task and wait for it and for the channel to close (idempotent)."""
        self.close()
        session = self.session
        if session is None or session.loop is not asyncio.get_running_loop():
            return
        if session.refetch is not None:
            session.refetch.cancel()
        tasks = [t for t in (session.task, session.refetch) if t is not None]
        if tasks:
            await asyncio.wait(tasks)
        await session.connection.close()  # again, in case the task was cancelled unstarted

    async def refetch_keys(self, session: _Session, kid: str | None) -> None:
        """Refetch the keys for the unknown ``kid`` unless :class:`RefetchGate` says no.

        Every concurrent caller awaits the same fetch.
        """
        task = session.refetch
        if task is None or task.done():
            if not self._gate.try_pass(kid):
                return
            task = session.refetch = session.loop.create_task(self._fetch_keys(session))
        await asyncio.shield(task)

    async def verify_remote(self, session: _Session, token: str) -> Principal:
        """Ask the TokenService (see :meth:`VerifierBase.remote`)."""
        request = remote_request(self.local, token)
        try:
            stub = session.connection.stub
            response = await stub.VerifyToken(request, timeout=self.link.timeout)
        except (grpc.RpcError, grpc.aio.UsageError) as err:
            raise VerifierUnavailable() from err
        except asyncio.CancelledError:
            if _cancelling():
                raise  # our caller gave up
            raise VerifierUnavailable() from None  # the channel was closed or replaced
        return accept_remote(self.local, token, response)

    async def _fetch_keys(self, session: _Session) -> pb.GetJwksResponse | BaseException:
        """One ``GetJwks`` call and its outcome applied."""
        outcome: pb.GetJwksResponse | BaseException
        try:
            stub = session.connection.stub
            outcome = await stub.GetJwks(pb.GetJwksRequest(), timeout=self.link.timeout)
        except (grpc.RpcError, grpc.aio.UsageError) as err:
            outcome = err
        except asyncio.CancelledError as err:
            if _cancelling():
                raise
            outcome = err  # the channel was replaced under the call
        keys_fetched(self.local, self._log, outcome, session.first_keys.set)
        return outcome

    async def _run(self, session: _Session) -> None:
        delays = self.link.backoff.delays()
        try:
            while True:
                try:
                    healthy = await self._round(session)
                except Exception:  # a bug must not end revocation following for good
                    log.exception("verifier background task failed; continuing")
                    healthy = False
                if healthy:
                    self._log.up()
                    delays = self.link.backoff.delays()
                else:
                    await asyncio.sleep(next(delays))
        finally:
            await session.connection.close()

    async def _round(self, session: _Session) -> bool:
        if not self.link.remote and silent_link(await self._fetch_keys(session)):
            await self._replace_channel(session)
            return False
        healthy = await self._follow_revocations(session)
        prune(self.local)
        return healthy

    async def _follow_revocations(self, session: _Session) -> bool:
        """Follow one ``WatchRevocations`` stream to its end; True if it was healthy."""
        began = time.monotonic()
        after = self.local.revocations.sequence
        request = watch_request(after)
        stub = session.connection.stub
        call = stub.WatchRevocations(request, timeout=self.link.resync_interval)
        events = 0
        started = False
        error: grpc.RpcError | None = None
        try:
            start = stream_start(await call.initial_metadata())
            started = not call.done()  # the metadata came, not the end of the call
            if self.feed.open(after, start) is Resume.RESET:
                return True  # reconnect at once, from sequence 0 (finally ends the call)
            self._advance(session, start)
            async for event in call:
                apply_revocation(self.local, event)
                events += 1
                self._advance(session, start)
        except grpc.RpcError as err:
            error = err
        finally:
            call.cancel()
        lived = time.monotonic() - began
        if silent_link(error, started=started or events > 0):
            await self._replace_channel(session)
        backoff = self.link.backoff
        return stream_ended(self._log, events, lived, backoff, error, started=started)

    def _advance(self, session: _Session, start: StreamStart) -> None:
        if self.feed.advance(start):
            session.caught_up.set()


def _cancelling() -> bool:
    """Whether the running task itself is being cancelled (not just a call it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
