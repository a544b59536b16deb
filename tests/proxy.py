"""A TCP proxy on loopback that a test can break in the two ways networks break.

``Proxy(upstream)`` listens on 127.0.0.1, a free port, and forwards every connection to
``upstream``. Neither peer is touched (the machine's PostgreSQL is never restarted):

- :meth:`Proxy.partition` makes the link silent both ways: bytes in flight are dropped,
  new connections are accepted and then hear nothing, and nothing is closed (no RST, no
  FIN: the peers cannot tell). The connections caught in it stay silent after
  :meth:`Proxy.heal`, as after a NAT or firewall forgot them, so each side must notice on
  its own (deadlines, keepalive).
- :meth:`Proxy.cut` closes every forwarded connection and accepts-then-closes new ones:
  what a client sees when the server restarts or fails over.

:meth:`Proxy.heal` forwards new connections again after either, and
:meth:`Proxy.retarget` sends them to another upstream (a server restarted elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, cast

from tests.harness import LoopThread

CHUNK = 65536
STOP_TIMEOUT = 5.0
"""Longest a closing proxy waits for its connections to end before cancelling them (s)."""


class Proxy:
    """A breakable TCP proxy in front of ``upstream`` (``host:port``)."""

    def __init__(self, upstream: str, loop: LoopThread) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self._loop = loop
        self._cut = False
        self._refusing = False
        self._generation = 0  # connections opened before the last partition stay dead
        self._writers: list[asyncio.StreamWriter] = []
        self._transports: list[asyncio.BaseTransport] = []  # every socket it ever had
        self._server: asyncio.Server = loop.run(self._start())
        self.port: int = self._server.sockets[0].getsockname()[1]
        self.target = f"127.0.0.1:{self.port}"

    async def _start(self) -> asyncio.Server:
        return await asyncio.get_running_loop().create_server(
            lambda: _Tracked(self._accept, self._transports), "127.0.0.1", 0
        )

    def partition(self) -> None:
        """Go silent: drop everything, close nothing."""
        self._cut = True
        self._generation += 1

    def cut(self) -> None:
        """Close every forwarded connection; accept new ones and close them at once."""
        self._refusing = True
        self._generation += 1

        async def close_all() -> None:
            for writer in self._writers:
                writer.close()
            self._writers.clear()

        self._loop.run(close_all())

    def heal(self) -> None:
        """Forward new connections again (the ones caught in a partition stay silent)."""
        self._cut = False
        self._refusing = False

    def retarget(self, upstream: str) -> None:
        """Forward new connections to ``upstream`` (``host:port``) from now on: a server
        that came back on another port, at the address its clients know."""
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if self._refusing:
            writer.close()
            return
        generation = self._generation
        if self._cut:  # accepted, then silence
            await self._drain(reader)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        self._writers.append(up_writer)
        self._transports.append(up_writer.transport)
        await asyncio.gather(
            self._pump(reader, up_writer, generation),
            self._pump(up_reader, writer, generation),
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, generation: int
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(CHUNK):
                if self._generation != generation:
                    continue  # caught in a partition: dropped, for good
                writer.write(data)
                await writer.drain()
            if self._generation == generation:
                writer.close()

    async def _drain(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(CHUNK):
                pass

    def close(self) -> None:
        """Stop listening and close every connection."""

        async def stop() -> None:
            self._refusing = True
            self._server.close()
            await self._server.wait_closed()
            for writer in self._writers:
                writer.close()
            # Connections accepted meanwhile run to their refusal, and every pump ends once
            # its sockets are closed. A connection still being accepted starts its task only
            # once that finishes, so this waits again until no task is left; whatever still
            # runs at the deadline is cancelled.
            clock = asyncio.get_running_loop().time
            deadline = clock() + STOP_TIMEOUT
            while tasks := [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                _, stuck = await asyncio.wait(tasks, timeout=max(0.0, deadline - clock()))
                for task in stuck:
                    task.cancel()
                await asyncio.gather(*stuck, return_exceptions=True)
                for writer in self._writers:
                    writer.close()
            # Every socket goes now, with what no task closed (a connection accepted as the
            # server closed, whose task never ran) and what a close left waiting to flush to
            # a peer that stopped reading; abort() does nothing to one already gone, and the
            # sockets close on the next loop iteration.
            for transport in self._transports:
                cast(asyncio.Transport, transport).abort()
            await asyncio.sleep(0)

        self._loop.run(stop())


class _Tracked(asyncio.StreamReaderProtocol):
    """The stream protocol of ``asyncio.start_server`` that also records its transport."""

    def __init__(
        self,
        accept: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]],
        transports: list[asyncio.BaseTransport],
    ) -> None:
        super().__init__(asyncio.StreamReader(limit=CHUNK), accept)
        self._transports = transports

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transports.append(transport)
        super().connection_made(transport)


@contextlib.contextmanager
def proxy(upstream: str) -> Iterator[Proxy]:
    """A :class:`Proxy` to ``upstream`` on a loop of its own, for the block."""
    loop = LoopThread()
    try:
        held = Proxy(upstream, loop)
        try:
            yield held
        finally:
            held.close()
    finally:
        loop.close()
        # The loop's objects go now: a socket the proxy failed to close is then reported
        # (ResourceWarning, an error under pytest) against the test that used it, not
        # against whichever test happens to run when the collector next passes.
        gc.collect()
