"""``bearer_grpc.aio.Verifier``: the asyncio flavour, same constructors, ``async verify``.

Lifecycle of a verifier that follows a TokenService (``from_token_service``,
``remote``): construction is synchronous and starts nothing, so the verifier can be
built before any event loop exists (typically before ``grpc.aio.server(interceptors=
[...])``). Its background task and ``grpc.aio`` channel start on first use inside a
running loop (the first ``lookup``/``verify``, i.e. the first call the interceptor sees),
or earlier with ``await verifier.start()`` or ``async with verifier:``. Stop them with
``await verifier.aclose()``; the synchronous ``close()`` only cancels the task (which
then closes its channel). One verifier serves one event loop at a time; used from a new
loop after the old one ended, it starts again there.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import grpc

from bearer_grpc import _verifier
from bearer_grpc._upstream import (
    LinkLog,
    RefetchGate,
    Resume,
    RevocationFeed,
    StreamStart,
    Upstream,
    accept_remote,
    apply_revocation,
    keys_fetched,
    log,
    prune,
    remote_request,
    silent_link,
    step,
    stream_ended,
    stream_start,
    token_kid,
    verify_flow,
)
from bearer_grpc.core.errors import VerifierUnavailable
from bearer_grpc.core.flow import LocalVerification
from bearer_grpc.core.tokens import Principal
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc


class Verifier(_verifier.VerifierBase):
    """Checks bearer tokens for one audience, for ``grpc.aio`` servers.

    Local verification is CPU work in memory and runs inline; only remote verification
    (and, rarely, a key refetch for an unknown ``kid``) awaits the network. See the
    module docstring for when a verifier following a TokenService starts and stops.
    After closing it refuses every token with :class:`VerifierUnavailable`.

    Args:
        local: The in-memory verification state.
        upstream: The TokenService to follow, or None for a fixed key set.
    """

    def __init__(self, local: LocalVerification, upstream: Upstream | None = None) -> None:
        super().__init__(local, upstream)
        self._follower = _TaskFollower(local, upstream) if upstream is not None else None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The background task following the TokenService (None before it started)."""
        session = self._follower.session if self._follower is not None else None
        return session.task if session is not None else None

    async def start(self) -> None:
        """Start following the TokenService now, on the running loop (idempotent).

        In local mode, wait up to ``startup_timeout`` for the first keys and the
        revocation backlog, then return either way (without them, ``verify`` fails closed
        until they arrive).

        Raises:
            VerifierUnavailable: The verifier was closed.
        """
        if self._follower is not None:
            await self._follower.start()

    def lookup(self, token: str) -> Principal | None:
        """A cached verification of ``token``, re-checked for expiry and revocation.

        Inside a running loop this also starts the background task if needed.

        Raises:
            TokenRevoked: The cached token was revoked since.
            VerifierUnavailable: The verifier was closed.
        """
        if self._follower is not None:
            self._follower.ensure_started()
        return self.local.lookup(token)

    async def verify(self, token: str) -> Principal:
        """Fully verify ``token`` (no scopes: the policy checks those).

        Raises:
            VerifierUnavailable: The token cannot be checked: closed; (local mode) no keys
                or revocation backlog yet, ``startup_timeout`` after the start; (remote
                mode) the TokenService did not answer.
            AuthError: The token is not valid.
        """
        follower = self._follower
        if follower is None:
            return self.local.verify(token)
        session = follower.ensure_started()
        if session is None:  # pragma: no cover - a coroutine runs inside a loop
            raise VerifierUnavailable()
        if follower.upstream.remote:
            return await follower.verify_remote(session, token)
        if self.local.keys is None or not session.caught_up.is_set():
            await session.wait_first_keys()
        if not follower.feed.caught_up:
            raise VerifierUnavailable()
        flow = verify_flow(self.local, token)
        while (principal := step(flow)) is None:
            await follower.refetch_keys(session, token_kid(token))
        return principal

    def close(self) -> None:
        """Stop following: cancel the background task (it closes its channel).

        Prefer ``await aclose()`` inside the loop, which also waits for that. Idempotent.
        """
        if self._follower is not None:
            self._follower.close()

    async def aclose(self) -> None:
        """Stop following and wait until the task ended and the channel is closed."""
        if self._follower is not None:
            await self._follower.aclose()


@dataclass
class _Session:
    """The background work of a verifier on one event loop."""

    loop: asyncio.AbstractEventLoop
    channel: grpc.aio.Channel
    stub: pb_grpc.TokenServiceAsyncStub
    startup_deadline: float
    first_keys: asyncio.Event = field(default_factory=asyncio.Event)
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once a revocation backlog has been applied (on any session of the verifier)."""
    task: asyncio.Task[None] | None = None
    refetch: asyncio.Task[None] | None = None

    async def wait_first_keys(self) -> None:
        """Wait for the first keys and the revocation backlog until the startup deadline
        (not at all after it)."""
        for event in (self.first_keys, self.caught_up):
            remaining = self.startup_deadline - time.monotonic()
            if remaining > 0 and not event.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)

    def cancel(self) -> None:
        """Cancel the task from any thread (nothing if its loop is gone)."""
        if self.task is None or self.task.done() or self.loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.task.cancel()
        else:
            self.loop.call_soon_threadsafe(self.task.cancel)


class _TaskFollower:
    """Follows a TokenService for an asyncio verifier: one task, one ``grpc.aio`` channel.

    The same loop as the sync ``_Follower``: fetch the keys (local mode), follow
    ``WatchRevocations`` until the stream ends, prune, back off after a failure.
    Unknown-``kid`` refetches are single-flight: one task, awaited by every caller.
    """

    def __init__(self, local: LocalVerification, upstream: Upstream) -> None:
        self.local = local
        self.upstream = upstream
        self.closed = False
        self.session: _Session | None = None
        self._gate = RefetchGate(upstream.refetch_interval)
        self._link = LinkLog(upstream.target)
        self.feed = RevocationFeed(local, upstream.target)

    def ensure_started(self) -> _Session | None:
        """The session on the running loop, started if needed (None outside a loop).

        Raises:
            VerifierUnavailable: The verifier was closed.
        """
        if self.closed:
            raise VerifierUnavailable()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        session = self.session
        if session is not None and session.loop is loop and not _ended(session):
            return session
        if session is not None:
            session.cancel()
        self.session = session = self._open(loop)
        return session

    def _open_channel(self) -> grpc.aio.Channel:
        upstream = self.upstream
        options = upstream.channel_options()
        if upstream.credentials is None:
            return grpc.aio.insecure_channel(upstream.target, options=options)
        return grpc.aio.secure_channel(upstream.target, upstream.credentials, options=options)

    async def _replace_channel(self, session: _Session) -> None:
        """Use a new channel (a new connection) from now on; close the old one."""
        old, session.channel = session.channel, self._open_channel()
        session.stub = pb_grpc.TokenServiceStub(session.channel)
        await old.close()
        log.debug("TokenService silent: new connection", extra={"target": self.upstream.target})

    def _open(self, loop: asyncio.AbstractEventLoop) -> _Session:
        upstream = self.upstream
        channel = self._open_channel()
        session = _Session(
            loop=loop,
            channel=channel,
            stub=pb_grpc.TokenServiceStub(channel),
            startup_deadline=time.monotonic() + upstream.startup_timeout,
        )
        if self.feed.caught_up:  # last known good from an earlier loop
            session.caught_up.set()
        session.task = loop.create_task(self._run(session), name="bearer-grpc-verifier")
        return session

    async def start(self) -> None:
        """Start on the running loop and wait for the first keys (local mode)."""
        session = self.ensure_started()
        if session is not None and not self.upstream.remote:
            await session.wait_first_keys()

    def close(self) -> None:
        """Cancel the task (idempotent)."""
        self.closed = True
        if self.session is not None:
            self.session.cancel()

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
        await session.channel.close()  # again, in case the task was cancelled unstarted

    async def refetch_keys(self, session: _Session, kid: str | None) -> None:
        """Refetch the keys for the unknown ``kid`` unless :class:`RefetchGate` says no;
        every concurrent caller awaits the same fetch."""
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
            response = await session.stub.VerifyToken(request, timeout=self.upstream.timeout)
        except (grpc.RpcError, grpc.aio.UsageError) as err:
            raise VerifierUnavailable() from err
        except asyncio.CancelledError:
            if _cancelling():
                raise  # our caller gave up
            raise VerifierUnavailable() from None  # the channel was closed or replaced
        return accept_remote(self.local, token, response)

    async def _fetch_keys(self, session: _Session) -> None:
        await self._get_jwks(session)

    async def _get_jwks(self, session: _Session) -> pb.GetJwksResponse | BaseException:
        outcome: pb.GetJwksResponse | BaseException
        try:
            outcome = await session.stub.GetJwks(pb.GetJwksRequest(), timeout=self.upstream.timeout)
        except (grpc.RpcError, grpc.aio.UsageError) as err:
            outcome = err
        except asyncio.CancelledError as err:
            if _cancelling():
                raise
            outcome = err  # the channel was replaced under the call
        keys_fetched(self.local, self._link, outcome, session.first_keys.set)
        return outcome

    async def _run(self, session: _Session) -> None:
        delays = self.upstream.backoff.delays()
        try:
            while True:
                try:
                    healthy = await self._round(session)
                except Exception:  # a bug must not end revocation following for good
                    log.exception("verifier background task failed; continuing")
                    healthy = False
                if healthy:
                    self._link.up()
                    delays = self.upstream.backoff.delays()
                else:
                    await asyncio.sleep(next(delays))
        finally:
            await session.channel.close()

    async def _round(self, session: _Session) -> bool:
        if not self.upstream.remote and silent_link(await self._get_jwks(session)):
            await self._replace_channel(session)
            return False
        healthy = await self._follow_revocations(session)
        prune(self.local)
        return healthy

    async def _follow_revocations(self, session: _Session) -> bool:
        """Follow one ``WatchRevocations`` stream to its end; True if it was healthy."""
        began = time.monotonic()
        after = self.local.revocations.sequence
        request = pb.WatchRevocationsRequest(after_sequence=after)
        call = session.stub.WatchRevocations(request, timeout=self.upstream.resync_interval)
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
        backoff = self.upstream.backoff
        return stream_ended(self._link, events, lived, backoff, error, started=started)

    def _advance(self, session: _Session, start: StreamStart) -> None:
        if self.feed.advance(start):
            session.caught_up.set()


def _cancelling() -> bool:
    """Whether the running task itself is being cancelled (not just a call it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _ended(session: _Session) -> bool:
    return session.task is None or session.task.done()
