"""The password pool: scrypt checks on a few threads of their own, shared fairly by peers.

A password check costs ~0.4 s and 128 MiB, so they run on ``workers`` threads apart from
everything else, and at most ``queue`` may be running or waiting: beyond that a login is
refused at once (:class:`Overloaded`, RESOURCE_EXHAUSTED with ``RetryInfo``), and a login
flood cannot starve issuing, revoking or the store sync.

Each peer (network address) gets a fair share: at most ``per_peer`` of its checks may be
running or waiting, and the workers take the waiting checks in turn across peers (round
robin), so one client with many calls in flight delays another by at most one check of
its own instead of locking everybody out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from bearer_grpc.core.errors import Overloaded
from bearer_grpc.service.throttle import peer_address

_T = TypeVar("_T")
_Job = tuple["Future[Any]", Callable[[], Any]]


class PasswordPool:
    """Runs password checks fairly across peers (see the module docstring).

    The threads start with the first check.

    Args:
        workers: Checks running at once.
        queue: Checks running or waiting, over all peers.
        per_peer: Checks running or waiting, for one peer.
    """

    def __init__(self, workers: int, queue: int, per_peer: int) -> None:
        self._workers = workers
        self._queue = queue
        self._per_peer = min(per_peer, queue)
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._waiting: OrderedDict[str, deque[_Job]] = OrderedDict()  # peers in turn
        self._held: dict[str, int] = {}  # checks running or waiting, by peer
        self._threads: list[threading.Thread] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"PasswordPool(held={sum(self._held.values())}, queue={self._queue})"

    def submit(self, peer: str, check: Callable[[], _T]) -> Future[_T]:
        """Queue ``check`` for ``peer``; it runs on a pool thread in the peers' turn.

        Returns:
            The check's future (cancel it to drop a check that has not started).

        Raises:
            Overloaded: The pool is full, or this peer holds its share (decided at once).
        """
        address = peer_address(peer)
        future: Future[_T] = Future()
        with self._lock:
            held = self._held.get(address, 0)
            if self._closed or sum(self._held.values()) >= self._queue:
                raise Overloaded("too many logins in progress; retry later")
            if held >= self._per_peer:
                raise Overloaded("too many logins in progress from this address; retry later")
            self._held[address] = held + 1
            self._waiting.setdefault(address, deque()).append((future, check))
            if len(self._threads) < self._workers:
                thread = threading.Thread(
                    target=self._work, name="bearer-grpc-password", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._ready.notify()
        return future

    def _next(self) -> tuple[str, _Job] | None:
        """The next check, the peers taking turns (None once closed)."""
        with self._ready:
            while not self._waiting and not self._closed:
                self._ready.wait()
            if self._closed:
                return None
            address, jobs = next(iter(self._waiting.items()))
            job = jobs.popleft()
            if jobs:
                self._waiting.move_to_end(address)  # the other peers go first
            else:
                del self._waiting[address]
            return address, job

    def _work(self) -> None:
        while (item := self._next()) is not None:
            address, (future, check) = item
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = check()
                    except BaseException as err:
                        future.set_exception(err)
                    else:
                        future.set_result(result)
            finally:
                with self._lock:
                    left = self._held.get(address, 0) - 1
                    if left > 0:
                        self._held[address] = left
                    else:
                        self._held.pop(address, None)

    def close(self) -> None:
        """Cancel the waiting checks and stop the threads once running checks end."""
        with self._ready:
            self._closed = True
            waiting = [job for jobs in self._waiting.values() for job in jobs]
            self._waiting.clear()
            self._held.clear()
            self._ready.notify_all()
        for future, _ in waiting:
            future.cancel()
