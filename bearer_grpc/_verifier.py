"""``bearer_grpc.Verifier``: what a protected server checks tokens with (sync flavour).

A verifier answers two questions for the interceptor's auth flow:
``lookup(token)``, a cache hit (pure, never blocks), and ``verify(token)``, a full
verification, which for local verifiers is a signature check in memory and for remote
ones a ``VerifyToken`` RPC. ``bearer_grpc.aio.Verifier`` has the same constructors and an
``async verify``.

Verifiers built with :meth:`VerifierBase.from_token_service` or
:meth:`VerifierBase.remote` follow the TokenService in the background (keys and
revocations; see :mod:`bearer_grpc._upstream` for the rules). The sync flavour does so
in one daemon thread, :class:`_Follower`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import grpc

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
from bearer_grpc.core.backoff import Backoff
from bearer_grpc.core.cache import DEFAULT_CACHE_SIZE
from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.errors import VerifierUnavailable
from bearer_grpc.core.flow import LocalVerification
from bearer_grpc.core.keys import PublicKeySet
from bearer_grpc.core.tokens import DEFAULT_LEEWAY, Principal
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc


class VerifierBase:
    """What sync and asyncio verifiers share: constructors and the verification state.

    Args:
        local: The in-memory verification state.
        upstream: The TokenService to follow, or None for a fixed key set.
    """

    def __init__(self, local: LocalVerification, upstream: Upstream | None = None) -> None:
        self.local = local
        self.upstream = upstream

    def __repr__(self) -> str:
        name, audience = type(self).__name__, self.local.audience
        if self.upstream is None:
            return f"{name}(issuer={self.local.issuer!r}, audience={audience!r})"
        mode = "remote" if self.upstream.remote else "local"
        return f"{name}(target={self.upstream.target!r}, audience={audience!r}, mode={mode})"

    @classmethod
    def from_jwks(
        cls,
        jwks: Mapping[str, Any] | str,
        *,
        issuer: str,
        audience: str,
        leeway: int = DEFAULT_LEEWAY,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Clock = system_clock,
    ) -> Self:
        """A verifier over a fixed key set (from a file or configuration).

        Args:
            jwks: A JWKS object or its JSON text. Only these keys are ever trusted.
            issuer: The exact ``iss`` required.
            audience: This service's audience; tokens must name it in ``aud``.
            leeway: Clock skew tolerated, seconds (default 30).
            cache_size: Verified tokens kept in memory (default 10,000; 0 disables).
            clock: Wall-clock time source.

        Raises:
            KeyMaterialError: The key set is malformed or breaks a hygiene rule.
        """
        keys = PublicKeySet.from_json(jwks) if isinstance(jwks, str) else PublicKeySet(jwks)
        return cls(
            LocalVerification(
                issuer=issuer,
                audience=audience,
                clock=clock,
                keys=keys,
                leeway=leeway,
                cache_size=cache_size,
            )
        )

    @classmethod
    def from_token_service(
        cls,
        target: str,
        *,
        audience: str,
        credentials: grpc.ChannelCredentials | None = None,
        leeway: int = DEFAULT_LEEWAY,
        cache_size: int = DEFAULT_CACHE_SIZE,
        refetch_interval: float = 30.0,
        startup_timeout: float = 5.0,
        timeout: float = 2.0,
        resync_interval: float = 60.0,
        backoff: Backoff | None = None,
        clock: Clock = system_clock,
    ) -> Self:
        """A local verifier that takes its issuer and keys from a TokenService.

        Keys and issuer come from ``GetJwks`` (and must pass :class:`PublicKeySet`
        hygiene); revocations arrive by ``WatchRevocations``, followed from the start and
        resumed after the last sequence seen when the stream breaks, so none is missed.
        On the call path only one thing may touch the network: a token whose ``kid`` is
        unknown refetches the keys, at most once per ``refetch_interval`` for each
        ``kid`` and at most once a second overall, however many calls ask at once; if
        the ``kid`` is still unknown the token is invalid. (So a made-up ``kid`` cannot
        hold back the refetch that learns a newly staged key.)

        A failed fetch keeps the last known good keys. Before the first key set ever
        arrived, and before the revocation backlog announced by a ``WatchRevocations``
        stream was ever applied, ``verify`` raises :class:`VerifierUnavailable` (fail
        closed). After that, an outage of the TokenService does not stop verification:
        the last known keys and revocations are used. When the TokenService's store is
        replaced or restored from a backup (its revocation sequence restarted), the
        verifier notices on reconnection and follows the revocations again from the start.

        Lifecycle: the sync ``Verifier`` starts one daemon thread here and waits up to
        ``startup_timeout`` for the first keys and the revocation backlog, then returns
        either way and keeps trying in the background. ``bearer_grpc.aio.Verifier`` starts
        its background task on first use inside a running event loop (or ``await
        verifier.start()``; ``async with``); calls in the first ``startup_timeout`` seconds
        wait for the keys and the backlog. Stop either with ``close()`` (aio: ``await
        aclose()``).

        Args:
            target: The TokenService address, ``host:port``.
            audience: This service's audience; tokens must name it in ``aud``.
            credentials: Channel credentials (TLS, mTLS); None for plaintext.
            leeway: Clock skew tolerated, seconds (default 30).
            cache_size: Verified tokens kept in memory (default 10,000; 0 disables).
            refetch_interval: Least time between two refetches for the same unknown
                ``kid`` (default 30 s).
            startup_timeout: Longest wait for the first keys and revocation backlog
                (default 5 s).
            timeout: Deadline of each ``GetJwks`` call (default 2 s).
            resync_interval: Seconds between routine key refreshes, revocation pruning
                and stream renewals (default 60).
            backoff: Delays between reconnection attempts (default :class:`Backoff()`).
            clock: Wall-clock time source.
        """
        upstream = Upstream(
            target,
            credentials,
            timeout=timeout,
            refetch_interval=refetch_interval,
            startup_timeout=startup_timeout,
            resync_interval=resync_interval,
            backoff=backoff or Backoff(),
        )
        local = LocalVerification(
            issuer=None, audience=audience, clock=clock, leeway=leeway, cache_size=cache_size
        )
        return cls(local, upstream)

    @classmethod
    def remote(
        cls,
        target: str,
        *,
        audience: str,
        credentials: grpc.ChannelCredentials | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        timeout: float = 2.0,
        resync_interval: float = 60.0,
        backoff: Backoff | None = None,
        clock: Clock = system_clock,
    ) -> Self:
        """A verifier that asks the TokenService (``VerifyToken``) about each new token.

        A positive answer is cached until the token's ``exp``; a negative one raises the
        :class:`AuthError` its ``reason`` names (``TOKEN_EXPIRED`` -> ``TokenExpired``,
        ...). When the TokenService cannot answer in ``timeout`` seconds the call is
        refused with :class:`VerifierUnavailable` (fail closed). Revocations are followed
        with ``WatchRevocations`` as for :meth:`from_token_service` (same lifecycle), so
        a cached answer is refused as soon as its token is revoked.

        Args:
            target: The TokenService address, ``host:port``.
            audience: This service's audience, sent with every ``VerifyToken``.
            credentials: Channel credentials (TLS, mTLS); None for plaintext.
            cache_size: Answers kept in memory (default 10,000; 0 disables).
            timeout: Deadline of each ``VerifyToken`` call (default 2 s).
            resync_interval: Seconds between revocation pruning and stream renewals.
            backoff: Delays between reconnection attempts (default :class:`Backoff()`).
            clock: Wall-clock time source.
        """
        upstream = Upstream(
            target,
            credentials,
            remote=True,
            timeout=timeout,
            resync_interval=resync_interval,
            backoff=backoff or Backoff(),
        )
        # The TokenService applies its own leeway; a cached answer lives until exp.
        local = LocalVerification(
            issuer=None, audience=audience, clock=clock, leeway=0, cache_size=cache_size
        )
        return cls(local, upstream)

    if TYPE_CHECKING:  # each flavour defines it (the interceptors' CachedLookup)

        def lookup(self, token: str) -> Principal | None: ...


class Verifier(VerifierBase):
    """Checks bearer tokens for one audience, for sync ``grpc`` servers.

    One following the TokenService (:meth:`from_token_service`, :meth:`remote`) owns a
    daemon thread and a channel: stop them with :meth:`close` or a ``with`` block. After
    closing it refuses every token with :class:`VerifierUnavailable`.

    Args:
        local: The in-memory verification state.
        upstream: The TokenService to follow, or None for a fixed key set.
    """

    def __init__(self, local: LocalVerification, upstream: Upstream | None = None) -> None:
        super().__init__(local, upstream)
        self._follower = _Follower(local, upstream) if upstream is not None else None
        if self._follower is not None:
            self._follower.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def thread(self) -> threading.Thread | None:
        """The background thread following the TokenService (None for a fixed key set)."""
        return self._follower.thread if self._follower is not None else None

    def lookup(self, token: str) -> Principal | None:
        """A cached verification of ``token``, re-checked for expiry and revocation.

        Raises:
            TokenRevoked: The cached token was revoked since.
            VerifierUnavailable: The verifier was closed.
        """
        if self._follower is not None and self._follower.closed:
            raise VerifierUnavailable()
        return self.local.lookup(token)

    def verify(self, token: str) -> Principal:
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
        if follower.closed:
            raise VerifierUnavailable()
        if follower.upstream.remote:
            return follower.verify_remote(token)
        if not follower.ready():
            raise VerifierUnavailable()
        flow = verify_flow(self.local, token)
        while (principal := step(flow)) is None:
            follower.refetch_keys(token_kid(token))
        return principal

    def close(self) -> None:
        """Stop the background thread and close the channel (idempotent)."""
        if self._follower is not None:
            self._follower.close()


class _Follower:
    """Follows a TokenService for a sync verifier: one daemon thread, one sync channel.

    The thread loops: fetch the keys (local mode), follow ``WatchRevocations`` until the
    stream ends (at the latest after ``resync_interval``), prune, and after a failure wait
    the next backoff delay. All key fetches share one lock, so they apply in order and
    concurrent unknown-``kid`` refetches collapse into one. When a call's silence says
    the connection died unnoticed (:func:`silent_link`), the channel is replaced.
    """

    def __init__(self, local: LocalVerification, upstream: Upstream) -> None:
        self.local = local
        self.upstream = upstream
        self.closed = False
        self._channel_lock = threading.Lock()  # guards closed and swapping the channel
        self._channel = self._open_channel()
        self._stub = pb_grpc.TokenServiceStub(self._channel)
        self._stopping = threading.Event()
        self._first_keys = threading.Event()
        self._caught_up = threading.Event()  # a revocation backlog was applied (ever)
        self._startup_deadline = time.monotonic() + upstream.startup_timeout
        self.feed = RevocationFeed(local, upstream.target)
        self._fetch_lock = threading.Lock()
        self._gate = RefetchGate(upstream.refetch_interval)
        self._link = LinkLog(upstream.target)
        self.thread = threading.Thread(target=self._run, name="bearer-grpc-verifier", daemon=True)

    def _open_channel(self) -> grpc.Channel:
        upstream = self.upstream
        options = upstream.channel_options()
        if upstream.credentials is None:
            return grpc.insecure_channel(upstream.target, options=options)
        return grpc.secure_channel(upstream.target, upstream.credentials, options=options)

    def _replace_channel(self) -> None:
        """Use a new channel (a new connection) from now on; close the old one."""
        with self._channel_lock:
            if self.closed:
                return
            old, self._channel = self._channel, self._open_channel()
            self._stub = pb_grpc.TokenServiceStub(self._channel)
        old.close()
        log.debug("TokenService silent: new connection", extra={"target": self.upstream.target})

    def start(self) -> None:
        """Start the thread; in local mode wait up to ``startup_timeout`` for the keys and
        the revocation backlog."""
        self._startup_deadline = deadline = time.monotonic() + self.upstream.startup_timeout
        self.thread.start()
        if not self.upstream.remote:
            self._first_keys.wait(self.upstream.startup_timeout)
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
        with self._channel_lock:
            if self.closed:
                return
            self.closed = True
            channel = self._channel
        self._stopping.set()
        channel.close()  # ends the watch stream and any fetch in flight
        if self.thread is not threading.current_thread():
            self.thread.join(self.upstream.timeout + 1)

    def refetch_keys(self, kid: str | None) -> None:
        """Refetch the keys for the unknown ``kid`` unless :class:`RefetchGate` says no
        (this ``kid`` was looked for, or any was, too recently)."""
        with self._fetch_lock:
            if self._gate.try_pass(kid):
                self._fetch_keys_locked()

    def verify_remote(self, token: str) -> Principal:
        """Ask the TokenService (see :meth:`VerifierBase.remote`)."""
        request = remote_request(self.local, token)
        try:
            response = self._stub.VerifyToken(request, timeout=self.upstream.timeout)
        except (grpc.RpcError, ValueError) as err:  # ValueError: channel closed meanwhile
            raise VerifierUnavailable() from err
        return accept_remote(self.local, token, response)

    def _fetch_keys_locked(self) -> pb.GetJwksResponse | BaseException:
        outcome: pb.GetJwksResponse | BaseException
        try:
            outcome = self._stub.GetJwks(pb.GetJwksRequest(), timeout=self.upstream.timeout)
        except (grpc.RpcError, ValueError) as err:  # ValueError: channel closed meanwhile
            outcome = err
        quiet = self._stopping.is_set()
        keys_fetched(self.local, self._link, outcome, self._first_keys.set, quiet=quiet)
        return outcome

    def _run(self) -> None:
        delays = self.upstream.backoff.delays()
        while not self._stopping.is_set():
            try:
                healthy = self._round()
            except Exception:  # a bug must not end revocation following for good
                log.exception("verifier background loop failed; continuing")
                healthy = False
            if healthy:
                self._link.up()
                delays = self.upstream.backoff.delays()
            else:
                self._stopping.wait(next(delays))

    def _round(self) -> bool:
        if not self.upstream.remote:
            with self._fetch_lock:
                outcome = self._fetch_keys_locked()
            if silent_link(outcome):
                self._replace_channel()
                return False
        healthy = self._follow_revocations()
        prune(self.local)
        return healthy

    def _follow_revocations(self) -> bool:
        """Follow one ``WatchRevocations`` stream to its end; True if it was healthy
        (delivered events, lived long, or reached its own deadline)."""
        began = time.monotonic()
        after = self.local.revocations.sequence
        request = pb.WatchRevocationsRequest(after_sequence=after)
        events = 0
        started = False
        error: grpc.RpcError | None = None
        try:
            call = self._stub.WatchRevocations(request, timeout=self.upstream.resync_interval)
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
            self._link, events, lived, self.upstream.backoff, error, started=started, quiet=quiet
        )

    def _advance(self, start: StreamStart) -> None:
        if self.feed.advance(start):
            self._caught_up.set()
