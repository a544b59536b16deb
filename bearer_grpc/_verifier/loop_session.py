"""The background work of an asyncio verifier part, kept per event loop.

A ``grpc.aio`` channel, an HTTP client and a task belong to the loop that made them, yet
one verifier object may serve several loops in turn (a test's, then a server's). So the
parts that follow something in the background (:mod:`.follower_aio`, :mod:`.jwks_aio`)
keep a :class:`LoopSession` and start a new one when asked on another loop, or after
their task ended; :class:`PerLoop` holds that rule once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bearer_grpc.core.errors import VerifierUnavailable


@dataclass(kw_only=True)
class LoopSession:
    """One loop's task and the event that says the first keys arrived.

    Attributes:
        loop: The loop the task runs on.
        startup_deadline: ``time.monotonic()`` after which callers stop waiting for keys.
        first_keys: Set once keys arrived.
        task: The background task (None until started).
    """

    loop: asyncio.AbstractEventLoop
    startup_deadline: float
    first_keys: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def ended(self) -> bool:
        """Whether its task is gone (or never started)."""
        return self.task is None or self.task.done()

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


_S = TypeVar("_S", bound=LoopSession)


class PerLoop(Generic[_S]):
    """Keeps one :class:`LoopSession` for the loop in use; subclasses say how to open one.

    Attributes:
        closed: Set by :meth:`close`; no session starts after it.
        session: The current session, if any.
    """

    def __init__(self) -> None:
        self.closed = False
        self.session: _S | None = None

    def _open(self, loop: asyncio.AbstractEventLoop) -> _S:
        """A new session on ``loop``, its task started."""
        raise NotImplementedError

    def ensure_started(self) -> _S | None:
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
        if session is not None and session.loop is loop and not session.ended():
            return session
        if session is not None:
            session.cancel()
        self.session = session = self._open(loop)
        return session

    def close(self) -> None:
        """Cancel the task (idempotent)."""
        self.closed = True
        if self.session is not None:
            self.session.cancel()
