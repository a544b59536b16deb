"""How a sync verifier keeps an identity provider's keys: one daemon thread."""

from __future__ import annotations

import threading
import time

import httpx

from bearer_grpc._channel import LinkLog
from bearer_grpc._verifier.http import HttpClient
from bearer_grpc._verifier.issuer import IssuerLink, KeyFetch, log, refreshed
from bearer_grpc._verifier.keys import RefetchGate
from bearer_grpc.core.errors import BearerGrpcError
from bearer_grpc.core.verification import LocalVerification


class JwksFollower:
    """Keeps the keys of an identity provider for a sync verifier.

    The thread fetches the keys (after discovery, when configured by issuer), then
    again when the answer's ``Cache-Control`` says (within the link's bounds), with a
    conditional GET; after a failure it retries with backoff and the keys trusted so far
    stay. All fetches share one lock, so concurrent unknown-``kid`` refetches collapse
    into one, gated per ``kid`` and overall by :class:`RefetchGate`.

    Args:
        local: The in-memory verification state it keeps up to date.
        link: The identity provider.
    """

    def __init__(self, local: LocalVerification, link: IssuerLink) -> None:
        self.local = local
        self.link = link
        self.closed = False
        self._fetch = KeyFetch(local, link)
        self._http = HttpClient(link.http)
        self._lock = threading.Lock()
        self._gate = RefetchGate(link.refetch_interval)
        self._log = LinkLog(log, link.target, "identity provider")
        self._stopping = threading.Event()
        self._first_keys = threading.Event()
        self._startup_deadline = time.monotonic() + link.startup_timeout
        self.thread = threading.Thread(target=self._run, name="bearer-grpc-jwks", daemon=True)

    def start(self) -> None:
        """Start the thread and wait up to ``startup_timeout`` for the first keys."""
        self._startup_deadline = time.monotonic() + self.link.startup_timeout
        self.thread.start()
        self._first_keys.wait(self.link.startup_timeout)

    def ready(self) -> bool:
        """Whether keys arrived (until then waits for them, not past the startup deadline)."""
        if not self._first_keys.is_set():
            self._first_keys.wait(max(0.0, self._startup_deadline - time.monotonic()))
        return self.local.keys is not None

    def refetch_keys(self, kid: str | None) -> None:
        """Refetch the keys for the unknown ``kid`` unless :class:`RefetchGate` says no."""
        with self._lock:
            if self._gate.try_pass(kid):
                self._refresh()

    def close(self) -> None:
        """Stop the thread, wait for it, close the connections (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._stopping.set()
        if self.thread is not threading.current_thread() and self.thread.is_alive():
            http = self.link.http
            self.thread.join(http.connect_timeout + http.read_timeout + 1)
        self._http.close()

    def _refresh(self) -> float | None:
        """One refresh (hold ``_lock``): seconds until the next, None after a failure."""
        outcome: float | BaseException
        try:
            outcome = self._http.drive(self._fetch.flow())
        except (httpx.HTTPError, BearerGrpcError, RuntimeError) as err:
            outcome = err  # RuntimeError: the client was closed meanwhile
        ok = refreshed(self._log, outcome, quiet=self._stopping.is_set())
        if not ok or isinstance(outcome, BaseException):
            return None
        self._first_keys.set()
        return outcome

    def _run(self) -> None:
        delays = self.link.backoff.delays()
        while not self._stopping.is_set():
            with self._lock:
                after = self._refresh()
            if after is None:
                self._stopping.wait(next(delays))
            else:
                delays = self.link.backoff.delays()
                self._stopping.wait(after)
