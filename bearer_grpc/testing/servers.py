"""Real gRPC servers on a free loopback port, and an event loop on a thread.

``serve`` runs a ``grpc.server``; ``serve_aio`` runs a ``grpc.aio.server`` on the running
event loop. A sync test that needs an aio server runs it on a :class:`LoopThread`::

    with LoopThread() as loop, loop.context(serve_aio(handlers)) as target:
        ...  # plain sync gRPC calls to target
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from concurrent import futures
from types import TracebackType
from typing import Any, TypeVar

import grpc
import grpc.aio

_T = TypeVar("_T")

LOOP_TIMEOUT = 30.0
"""Longest :meth:`LoopThread.run` waits for a coroutine by default, in seconds."""


def _add_port(server: grpc.Server | grpc.aio.Server, credentials: Any) -> int:
    if credentials is None:
        return server.add_insecure_port("127.0.0.1:0")
    return server.add_secure_port("127.0.0.1:0", credentials)


@contextlib.contextmanager
def serve(
    handlers: Sequence[grpc.GenericRpcHandler],
    *,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    max_workers: int = 8,
    credentials: grpc.ServerCredentials | None = None,
) -> Iterator[str]:
    """Run a sync ``grpc.server`` with ``handlers`` on 127.0.0.1, a free port.

    Args:
        handlers: The services, e.g. ``[Echo().handler()]``.
        interceptors: Server interceptors, outermost first.
        max_workers: Threads of the server's pool.
        credentials: Server credentials of the port (default: plaintext), e.g.
            ``grpc.local_server_credentials()``.

    Yields:
        The target (``127.0.0.1:PORT``); the server stops when the block ends.
    """
    with futures.ThreadPoolExecutor(max_workers=max_workers) as pool:
        server = grpc.server(pool, handlers=list(handlers), interceptors=list(interceptors))
        port = _add_port(server, credentials)
        server.start()
        try:
            yield f"127.0.0.1:{port}"
        finally:
            server.stop(None).wait()


@contextlib.asynccontextmanager
async def serve_aio(
    handlers: Sequence[grpc.GenericRpcHandler],
    *,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    credentials: grpc.ServerCredentials | None = None,
) -> AsyncIterator[str]:
    """Run a ``grpc.aio.server`` with ``handlers`` on 127.0.0.1, a free port.

    Args:
        handlers: The services, e.g. ``[Echo().aio_handler()]``.
        interceptors: ``grpc.aio`` server interceptors, outermost first.
        credentials: Server credentials of the port (default: plaintext).

    Yields:
        The target (``127.0.0.1:PORT``); the server stops when the block ends.
    """
    server = grpc.aio.server(handlers=list(handlers), interceptors=list(interceptors))
    port = _add_port(server, credentials)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


class LoopThread:
    """An asyncio event loop running in a daemon thread, for sync code that needs one.

    Use it as a context manager, or call :meth:`close` when done.

    Attributes:
        loop: The event loop (schedule work on it only from other threads through
            :meth:`run` or ``asyncio.run_coroutine_threadsafe``).
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="bearer-grpc-testing-loop", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"LoopThread(running={self.loop.is_running()})"

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float = LOOP_TIMEOUT) -> _T:
        """Run ``coro`` on the loop and wait for its result.

        Args:
            coro: The coroutine.
            timeout: Seconds to wait for the result.

        Returns:
            What ``coro`` returned.

        Raises:
            TimeoutError: ``coro`` did not finish within ``timeout`` seconds.
        """
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @contextlib.contextmanager
    def context(self, manager: contextlib.AbstractAsyncContextManager[_T]) -> Iterator[_T]:
        """Enter an async context manager on the loop, for the length of a sync block.

        Args:
            manager: For example ``serve_aio(handlers)``.

        Yields:
            What ``manager`` yields; it is exited on the loop when the block ends.
        """
        value = self.run(manager.__aenter__())
        try:
            yield value
        except BaseException as err:
            if not self.run(manager.__aexit__(type(err), err, err.__traceback__)):
                raise
        else:
            self.run(manager.__aexit__(None, None, None))

    def close(self) -> None:
        """Let the loop's default executor finish, stop the loop and join its thread."""
        if self.loop.is_closed():
            return
        with contextlib.suppress(RuntimeError, TimeoutError):
            self.run(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
