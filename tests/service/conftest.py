"""Helpers for the TokenService tests: a controllable clock, trailers, streams.

Every test here talks to a real ``TokenServer`` (``tests.harness.running_service``) over
a real gRPC channel with the sync ``grpc`` client; users and grant requests come from
``tests.harness`` (shared with the other suites that sign in), rich errors and call
metadata from the kit (``bearer_grpc.testing``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from bearer_grpc._verifier.revocations import watch_request
from bearer_grpc.store import sqlite_url
from bearer_grpc.testing import FrozenClock
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import RunningService, running_service


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock at a whole second near the real time."""
    return FrozenClock(float(int(time.time())))


@pytest.fixture
def clocked_service(data_dir: Path, clock: FrozenClock) -> Iterator[RunningService]:
    """A TokenService on SQLite whose time is ``clock``."""
    with running_service(sqlite_url(data_dir), clock=clock) as running:
        yield running


def trailer(err: grpc.RpcError, key: str) -> list[str | bytes]:
    """Every value of trailing metadata ``key`` of a failed call."""
    return [value for k, value in (err.trailing_metadata() or ()) if k == key]  # type: ignore[attr-defined]


_END = object()


@dataclass
class StreamReader:
    """Reads a server stream in a thread so the test can wait on it with deadlines.

    Attributes:
        call: The streaming call (cancel it to stop).
        code: Final status code once the stream has ended.
    """

    call: Any
    code: grpc.StatusCode | None = None
    _queue: queue.Queue[Any] = field(default_factory=queue.Queue)
    _held: list[Any] = field(default_factory=list)
    _done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            for message in self.call:
                self._queue.put(message)
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as err:
            self.code = err.code()  # type: ignore[attr-defined]
        finally:
            self._done.set()
            self._queue.put(_END)

    def next(self, timeout: float) -> Any:
        """The next message within ``timeout`` seconds (fails otherwise, or at stream end)."""
        try:
            message = self._held.pop() if self._held else self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout} s") from None
        if message is _END:
            raise AssertionError(f"stream ended with {self.code} instead of a message")
        return message

    def take(self, count: int, timeout: float) -> list[Any]:
        """``count`` messages, all within ``timeout`` seconds from now."""
        deadline = time.monotonic() + timeout
        return [self.next(max(0.0, deadline - time.monotonic())) for _ in range(count)]

    def nothing_within(self, timeout: float) -> bool:
        """True if no message (and no end) arrives within ``timeout`` seconds."""
        if self._held:
            return False
        try:
            self._held.append(self._queue.get(timeout=timeout))
        except queue.Empty:
            return True
        return False

    def end(self, timeout: float) -> grpc.StatusCode | None:
        """Wait for the stream to end; returns its code (None if still open at the deadline)."""
        self._done.wait(timeout)
        return self.code

    def close(self) -> None:
        """Cancel the call."""
        self.call.cancel()
        self._done.wait(5)


@pytest.fixture
def watch() -> Iterator[Any]:
    """Open WatchRevocations streams as StreamReaders; all are cancelled after the test."""
    readers: list[StreamReader] = []

    def open_(stub: pb_grpc.TokenServiceStub, after_sequence: int = 0) -> StreamReader:
        call = stub.WatchRevocations(watch_request(after_sequence), timeout=30)
        reader = StreamReader(call)
        readers.append(reader)
        return reader

    yield open_
    for reader in readers:
        reader.close()
