"""What the stolen-credential tests share: timed stream readers and grant requests.

Every test here runs real parts: a TokenService on port 0, real stores, real gRPC
channels. Waits are deadlines (``wait_until``, a queue or a condition with a timeout),
never sleeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from bearer_grpc._verifier.revocations import watch_request
from bearer_grpc.store import Account, AccountKind
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc


class TimedWatch:
    """A WatchRevocations stream read in a thread that notes when each event arrived.

    Args:
        stub: Where to watch.
        after_sequence: Where to resume.
    """

    def __init__(self, stub: pb_grpc.TokenServiceStub, after_sequence: int = 0) -> None:
        self.call: Any = stub.WatchRevocations(watch_request(after_sequence), timeout=120)
        self.arrived: dict[int, float] = {}
        self.events: list[pb.WatchRevocationsResponse] = []
        self.code: grpc.StatusCode | None = None
        self.headers: dict[str, str] | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            headers = dict(self.call.initial_metadata())  # sent once the stream is admitted
            with self._changed:
                self.headers = headers
                self._changed.notify_all()
            for event in self.call:
                now = time.monotonic()
                with self._changed:
                    self.arrived.setdefault(event.sequence, now)
                    self.events.append(event)
                    self._changed.notify_all()
            code = grpc.StatusCode.OK
        except grpc.RpcError as err:
            code = err.code()  # type: ignore[attr-defined]
        with self._changed:
            self.code = code
            self._changed.notify_all()

    def arrival(self, sequence: int, timeout: float) -> float:
        """When the event ``sequence`` arrived (monotonic); fails after ``timeout`` s."""
        with self._changed:
            if not self._changed.wait_for(lambda: sequence in self.arrived, timeout):
                raise AssertionError(f"event {sequence} not delivered within {timeout} s")
            return self.arrived[sequence]

    def admitted(self, timeout: float) -> bool:
        """Whether the server took the stream (sent its headers) rather than refused it.

        Fails after ``timeout`` s with neither.
        """
        with self._changed:
            if not self._changed.wait_for(
                lambda: bool(self.headers) or self.code is not None, timeout
            ):
                raise AssertionError(f"stream neither admitted nor refused within {timeout} s")
            return bool(self.headers)

    def ended(self, timeout: float) -> grpc.StatusCode | None:
        """The stream's final code, once it ended (None if still open after ``timeout``)."""
        with self._changed:
            self._changed.wait_for(lambda: self.code is not None, timeout)
            return self.code

    def close(self) -> None:
        """Cancel the stream and wait for its reader."""
        self.call.cancel()
        self._thread.join(10)


class PausingStore:
    """The real store, with one pause injected: right after a grant has read ``user``'s
    account (the login is then "in flight": it has the account, not yet the token).

    Args:
        store: The store every call goes to.
        user: Whose account read pauses.
        hold: Wait for :attr:`release` at the pause (False: only signal :attr:`reached`).
    """

    def __init__(self, store: Any, user: str, *, hold: bool = True) -> None:
        self._store = store
        self._user = user
        self._hold = hold
        self.reached = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get_account(self, name: str, kind: AccountKind) -> Account | None:
        account = self._store.get_account(name, kind)
        if name == self._user and kind is AccountKind.USER and not self.reached.is_set():
            self.reached.set()
            if self._hold:
                assert self.release.wait(30), "the test never released the paused grant"
        return account


def grpc_code(call: Callable[[], object]) -> grpc.StatusCode:
    """The status code a call ends with (OK when it returns)."""
    try:
        call()
    except grpc.RpcError as err:
        return err.code()  # type: ignore[attr-defined, no-any-return]
    return grpc.StatusCode.OK
