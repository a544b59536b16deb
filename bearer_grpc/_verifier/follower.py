"""How a sync verifier follows its TokenService: one daemon thread, one channel."""

from __future__ import annotations

import threading
import time

import grpc

from bearer_grpc._channel import Connection, LinkLog, silent_link
from bearer_grpc._verifier.base import TokenServiceLink
from bearer_grpc._verifier.keys import RefetchGate, keys_fetched
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


class Follower:
    """Follows a TokenService for a sync verifier: one daemon thread, one sync channel.

    The thread loops: fetch the keys (local mode), follow ``WatchRevocations`` until the
    stream ends (at the latest after ``resync_interval``), prune, and after a failure wait
    the next backoff delay. All key fetches share one lock, so they apply in order and
    concurrent unknown-``kid`` refetches collapse into one. When a call's silence says
    the connection died unnoticed (:func:`silent_link`), the channel is replaced.

    Args:
        local: The in-memory verification state it keeps up to date.
        link: The TokenService to follow.
    """

    def __init__(self, local: LocalVerification, link: TokenServiceLink) -> None:
        self.local = local
        self.link = link
        self._connection = Connection(link.endpoint)
        self._stopping = threading.Event()
        self._first_keys = threading.Event()
        self._caught_up = threading.Event()  # a revocation backlog was applied (ever)
        self._startup_deadline = time.monotonic() + link.startup_timeout
        self.feed = RevocationFeed(local, link.target)
        self._fetch_lock = threading.Lock()
        self._gate = RefetchGate(link.refetch_interval)
        self._log = LinkLog(log, link.target)
        self.thread = threading.Thread(target=self._run, name="bearer-grpc-verifier", daemon=True)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._connection.closed

    def _replace_channel(self) -> None:
        """Use a new connection from now on (the old one went silent)."""
        self._connection.replace()
        log.debug("TokenService silent: new connection", extra={"target": self.link.target})

    def start(self) -> None:
        """Start the thread.

        In local mode, wait up to ``startup_timeout`` for the keys and the revocation backlog.
        """
        self._startup_deadline = deadline = time.monotonic() + self.link.startup_timeout
        self.thread.start()
        if not self.link.remote:
            self._first_keys.wait(self.link.startup_timeout)
            self._caught_up.wait(max(0.0, deadline - time.monotonic()))

    def ready(self) -> bool:
        """Whether local verification may answer: a revocation backlog was applied once.

        Until then waits for it, but not past the startup deadline.
        """
        if not self._caught_up.is_set():
            self._caught_up.wait(max(0.0, self._startup_deadline - time.monotonic()))
        return self._caught_up.is_set()

    def close(self) -> None:
        """Stop the thread, cancel its calls, close the channel, wait for the thread."""
        if self.closed:
            return
        self._stopping.set()
        self._connection.close()  # ends the watch stream and any fetch in flight
        if self.thread is not threading.current_thread() and self.thread.is_alive():
            self.thread.join(self.link.timeout + 1)

    def refetch_keys(self, kid: str | None) -> None:
        """Refetch the keys for the unknown ``kid`` unless :class:`RefetchGate` says no.

        It says no when this ``kid`` was looked for, or any was, too recently.
        """
        with self._fetch_lock:
            if self._gate.try_pass(kid):
                self._fetch_keys()

    def verify_remote(self, token: str) -> Principal:
        """Ask the TokenService (see :meth:`VerifierBase.remote`)."""
        request = remote_request(self.local, token)
        try:
            response = self._connection.stub.VerifyToken(request, timeout=self.link.timeout)
        except (grpc.RpcError, ValueError) as err:  # ValueError: channel closed meanwhile
            raise VerifierUnavailable() from err
        return accept_remote(self.local, token, response)

    def _fetch_keys(self) -> pb.GetJwksResponse | BaseException:
        """One ``GetJwks`` call and its outcome applied (hold ``_fetch_lock``)."""
        outcome: pb.GetJwksResponse | BaseException
        try:
            stub = self._connection.stub
            outcome = stub.GetJwks(pb.GetJwksRequest(), timeout=self.link.timeout)
        except (grpc.RpcError, ValueError) as err:  # ValueError: channel closed meanwhile
            outcome = err
        quiet = self._stopping.is_set()
        keys_fetched(self.local, self._log, outcome, self._first_keys.set, quiet=quiet)
        return outcome

    def _run(self) -> None:
        delays = self.link.backoff.delays()
        while not self._stopping.is_set():
            try:
                healthy = self._round()
            except Exception:  # a bug must not end revocation following for good
                log.exception("verifier background loop failed; continuing")
                healthy = False
            if healthy:
                self._log.up()
                delays = self.link.backoff.delays()
            else:
                self._stopping.wait(next(delays))

    def _round(self) -> bool:
        if not self.link.remote:
            with self._fetch_lock:
                outcome = self._fetch_keys()
            if silent_link(outcome):
                self._replace_channel()
                return False
        healthy = self._follow_revocations()
        prune(self.local)
        return healthy

    def _follow_revocations(self) -> bool:
        """Follow one ``WatchRevocations`` stream to its end; True if it was healthy.

        Healthy: it delivered events, lived long, or reached its own deadline.
        """
        began = time.monotonic()
        after = self.local.revocations.sequence
        request = watch_request(after)
        events = 0
        started = False
        error: grpc.RpcError | None = None
        try:
            stub = self._connection.stub
            call = stub.WatchRevocations(request, timeout=self.link.resync_interval)
            start = stream_start(call.initial_metadata())
            # the metadata came, not the end of the call (the rendezvous is a grpc.Future)
            started = not (isinstance(call, grpc.Future) and call.done())
            if self.feed.open(after, start) is Resume.RESET:
                call.cancel()
                return True  # reconnect at once, from sequence 0
            self._advance(start)
            for event in call:
                apply_revocation(self.local, event)
                events += 1
                self._advance(start)
        except grpc.RpcError as err:
            error = err
        except ValueError:  # the channel was closed: we are stopping
            return False
        lived = time.monotonic() - began
        quiet = self._stopping.is_set()
        if not quiet and silent_link(error, started=started or events > 0):
            self._replace_channel()
        return stream_ended(
            self._log, events, lived, self.link.backoff, error, started=started, quiet=quiet
        )

    def _advance(self, start: StreamStart) -> None:
        if self.feed.advance(start):
            self._caught_up.set()
