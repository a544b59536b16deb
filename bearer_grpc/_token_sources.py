"""Token sources, sync flavour: where a client gets its bearer token.

- :class:`StaticToken` hands out a token that comes from elsewhere.
- :class:`ClientCredentials` requests tokens from the TokenService's client-credentials
  grant and renews them in a daemon thread.

``token()`` returns a bearer token, ``invalidate(token)`` says a server called it
expired or revoked. The client interceptor and call credentials that send the token are
in :mod:`bearer_grpc._client`.

The rules shared with :mod:`bearer_grpc.aio` live here once: the token syntax check
(:func:`check_token`), the ``IssueToken`` request and answer (:func:`issue_request`,
:func:`issued_token`), the error texts (:func:`failure_text`), the channel options and
the logging of outcomes (:func:`record_outcome`); the timing rules live in
:mod:`bearer_grpc.core.renewal` and :mod:`bearer_grpc.core.backoff`.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Protocol, Self

import grpc

from bearer_grpc._upstream import silent_link
from bearer_grpc.core.backoff import Backoff, BackoffPolicy
from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.errors import BearerGrpcError, UnusableAnswer
from bearer_grpc.core.header import B64TOKEN
from bearer_grpc.core.renewal import DEFAULT_RENEW_BEFORE, Failed, Ready, Renewal
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc

log = logging.getLogger("bearer_grpc.client")

DEFAULT_TIMEOUT: Final = 10.0
"""Deadline of one ``IssueToken`` request, seconds."""
MAX_IDLE_WAIT: Final = 60.0
"""Longest the background sleeps without looking at the clock (wall-clock jumps)."""


class TokenSource(Protocol):
    """Where a sync client gets its bearer token."""

    def token(self) -> str:
        """Return a usable token (may wait for the first one; never for a renewal)."""
        ...

    def invalidate(self, token: str) -> None:
        """Hint that a server rejected ``token`` as expired or revoked."""
        ...


def check_token(token: str) -> str:
    """Return ``token`` if it is one RFC 6750 b64token (what follows ``Bearer``).

    Raises:
        ValueError: Empty, or holds spaces, a scheme or other characters (the message
            never repeats the token).
    """
    if not B64TOKEN.fullmatch(token):
        raise ValueError("a bearer token is one b64token (RFC 6750), without 'Bearer '")
    return token


def issue_request(
    client_id: str, client_secret: str, scopes: Sequence[str], audience: str
) -> pb.IssueTokenRequest:
    """The ``IssueToken`` request of a client-credentials source.

    Raises:
        ValueError: ``client_id`` or ``client_secret`` is empty.
        TypeError: ``scopes`` is one string instead of a sequence of them.
    """
    if not client_id or not client_secret:
        raise ValueError("client_id and client_secret are required")
    if isinstance(scopes, str):
        raise TypeError("scopes is a sequence of scope names, not one string")
    grant = pb.ClientCredentialsGrant(client_id=client_id, client_secret=client_secret)
    return pb.IssueTokenRequest(client_credentials=grant, scopes=list(scopes), audience=audience)


def issued_token(response: pb.IssueTokenResponse) -> tuple[str, int]:
    """The token and lifetime of an ``IssueToken`` answer.

    Raises:
        UnusableAnswer: Not a bearer token, not one b64token, or no lifetime.
    """
    token = response.access_token
    if response.token_type.lower() != "bearer" or response.expires_in <= 0:
        raise UnusableAnswer()
    if not B64TOKEN.fullmatch(token):
        raise UnusableAnswer()
    return token, response.expires_in


def failure_text(target: str, error: BaseException) -> tuple[grpc.StatusCode, str]:
    """Code and message for "no token could be had", from the request's error.

    Only the token service's status and terse details are repeated (they never hold
    the secret); for an exception that is not an RPC error, only its type.
    """
    if isinstance(error, grpc.RpcError) and hasattr(error, "details"):
        code, details = error.code(), error.details() or ""
    elif isinstance(error, UnusableAnswer):
        code, details = grpc.StatusCode.INTERNAL, str(error)
    else:
        code, details = grpc.StatusCode.INTERNAL, type(error).__name__
    return code, f"no access token from the token service at {target}: {code.name}: {details}"


def channel_options(backoff: BackoffPolicy) -> list[tuple[str, Any]]:
    """Channel arguments: gRPC reconnects no slower than ``backoff`` retries, on
    connections of the source's own (not shared with other channels, so a replacement
    channel opens a new one: see :func:`~bearer_grpc._upstream.silent_link`)."""
    return [
        ("grpc.initial_reconnect_backoff_ms", max(1, round(backoff.initial * 1000))),
        ("grpc.max_reconnect_backoff_ms", max(1, round(backoff.maximum * 1000))),
        ("grpc.use_local_subchannel_pool", 1),
    ]


class TokenRequestError(BearerGrpcError, grpc.RpcError):
    """No usable access token could be had from the token service.

    A ``grpc.RpcError``, so code that handles failed calls handles this too: ``code()``
    is the token service's status (UNAVAILABLE when it cannot be reached,
    UNAUTHENTICATED when it rejects the client credentials) and ``details()`` says
    which service answered what. Never holds the client secret.

    Args:
        target: The token service address.
        error: What the last request failed with (also the ``__cause__``).
    """

    def __init__(self, target: str, error: BaseException) -> None:
        self._code, self._details = failure_text(target, error)
        super().__init__(self._details)
        self.target = target

    def code(self) -> grpc.StatusCode:
        """The token service's status code."""
        return self._code

    def details(self) -> str:
        """What failed, in one line."""
        return self._details

    def trailing_metadata(self) -> tuple[Any, ...]:
        """Empty: the failure happened before the call was sent."""
        return ()


class _StaticTokenBase:
    """What both flavours of ``StaticToken`` share: the check, the hiding ``repr``."""

    def __init__(self, token: str) -> None:
        self._token = check_token(token)

    def __repr__(self) -> str:
        return "StaticToken('***')"

    def invalidate(self, token: str) -> None:
        """Nothing to renew: a rejected static token stays rejected."""


class StaticToken(_StaticTokenBase):
    """A token that comes from elsewhere, used as it is (``repr`` hides it).

    Args:
        token: The bearer token, without ``Bearer``.

    Raises:
        ValueError: ``token`` is not one b64token.
    """

    def token(self) -> str:
        """Return the token."""
        return self._token


@dataclass(frozen=True)
class _ClientConfig:
    """The settings of a client-credentials source, checked (``repr`` hides the secret)."""

    target: str
    client_id: str
    request: pb.IssueTokenRequest = field(repr=False)  # holds the client secret
    credentials: grpc.ChannelCredentials | None = field(repr=False)
    renew_before: float
    backoff: BackoffPolicy
    timeout: float
    clock: Clock = field(repr=False)

    def describe(self) -> str:
        """The sources' ``repr``: target, client id, scopes, audience; never the secret."""
        return (
            f"ClientCredentials(target={self.target!r}, client_id={self.client_id!r}, "
            f"scopes={list(self.request.scopes)!r}, audience={self.request.audience!r})"
        )


class _ClientCredentialsBase:
    """The constructor and ``repr`` both flavours of ``ClientCredentials`` share.

    Builds the checked :class:`_ClientConfig` and the renewal timetable, then calls
    :meth:`_setup` for what the flavour needs (a channel, or nothing until a loop runs).
    """

    def __init__(
        self,
        target: str,
        client_id: str,
        client_secret: str,
        *,
        scopes: Sequence[str] = (),
        audience: str = "",
        credentials: grpc.ChannelCredentials | None = None,
        renew_before: float = DEFAULT_RENEW_BEFORE,
        backoff: BackoffPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Clock = system_clock,
    ) -> None:
        self._config = _ClientConfig(
            target=target,
            client_id=client_id,
            request=issue_request(client_id, client_secret, scopes, audience),
            credentials=credentials,
            renew_before=renew_before,
            backoff=backoff or Backoff(),
            timeout=timeout,
            clock=clock,
        )
        self._renewal = Renewal(self._config.backoff, renew_before=renew_before)
        self._setup()

    def __repr__(self) -> str:
        return self._config.describe()

    def _setup(self) -> None:
        """Set up the flavour's own state (called once, at the end of ``__init__``)."""

    def _record(self, outcome: tuple[str, int] | BaseException, requested_at: float) -> None:
        """Apply and log one ``IssueToken`` outcome (see :func:`record_outcome`)."""
        config = self._config
        record_outcome(
            self._renewal,
            outcome,
            requested_at=requested_at,
            now=config.clock(),
            client_id=config.client_id,
            target=config.target,
        )


@dataclass
class _Worker:
    """State shared between callers and the renewal thread (guarded by ``cond``)."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    thread: threading.Thread | None = None
    fetching: bool = False
    completed: int = 0
    closed: bool = False


class ClientCredentials(_ClientCredentialsBase):
    """Access tokens for a service, from the TokenService's client-credentials grant.

    The first :meth:`token` call requests a token (concurrent first calls share that one
    request); later calls return the cached token at once. A daemon thread renews it
    ``renew_before`` ahead of expiry, so calls never wait for a renewal. When the token
    service cannot be reached the thread backs off (capped, jittered, exponential) and
    keeps trying; callers keep the old token while it is usable and otherwise get a
    :class:`TokenRequestError` at once. Nothing starts before the first :meth:`token`;
    ``close()`` (or leaving a ``with`` block) stops the thread and the channel.

    Args:
        target: The TokenService address, ``host:port`` (any gRPC target).
        client_id: The client's id.
        client_secret: The client's secret; never shown in ``repr``, logs or errors.
        scopes: Scopes to request; empty (default) means all the client may have.
        audience: Audience to request; empty (default) means the client's default.
        credentials: Channel credentials for the token service (TLS); None (default)
            for a plaintext channel.
        renew_before: When to renew: below 1, a fraction of the token's lifetime left
            (default 0.2); from 1 on, seconds before expiry. At most half the lifetime.
        backoff: Bounds of the delays between failed requests (default
            ``bearer_grpc.Backoff()``: up to 0.1 s, doubling up to 5 s); the channel
            reconnects within the same bounds.
        timeout: Deadline of one ``IssueToken`` request, seconds (default 10).
        clock: Time source for the token timetable (default wall-clock ``time.time``,
            which, unlike ``time.monotonic``, keeps counting while the machine sleeps).

    Raises:
        ValueError: An empty client id or secret, or a bad ``renew_before``.
        TypeError: ``scopes`` is one string instead of a sequence of them.
    """

    def _setup(self) -> None:
        self._state = _Worker()
        self._open_channel()

    def _open_channel(self) -> None:
        config = self._config
        options = channel_options(config.backoff)
        if config.credentials is None:
            self._channel = grpc.insecure_channel(config.target, options=options)
        else:
            self._channel = grpc.secure_channel(config.target, config.credentials, options=options)
        self._issue = pb_grpc.TokenServiceStub(self._channel).IssueToken

    def _replace_channel(self) -> None:
        """A request died unanswered at its deadline: the connection may be silently
        dead, and gRPC would keep using it. Open a new channel; close the old one."""
        with self._state.cond:
            if self._state.closed:
                return
            old = self._channel
            self._open_channel()
        old.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def token(self) -> str:
        """Return a usable access token.

        Waits only when there is none yet (the first call, or after the last one
        expired or was invalidated), and then for one shared request.

        Raises:
            TokenRequestError: No usable token, and the last request failed (the next
                one is due after the backoff delay).
            RuntimeError: The source was closed.
        """
        state = self._state
        with state.cond:
            self._start()
            while True:
                if state.closed:
                    raise RuntimeError("ClientCredentials is closed")
                step = self._renewal.decide(self._config.clock())
                if isinstance(step, Ready):
                    if step.renew and not state.fetching:
                        state.cond.notify_all()
                    return step.token
                if isinstance(step, Failed):
                    raise TokenRequestError(self._config.target, step.error) from step.error
                completed = state.completed
                state.cond.notify_all()
                while state.completed == completed and not state.closed:
                    state.cond.wait()

    def invalidate(self, token: str) -> None:
        """Drop ``token`` if it is the cached one; the next :meth:`token` fetches anew."""
        with self._state.cond:
            if self._renewal.invalidate(token):
                self._state.cond.notify_all()

    def close(self) -> None:
        """Stop renewing and close the channel (idempotent); :meth:`token` then fails."""
        state = self._state
        with state.cond:
            if state.closed:
                return
            state.closed = True
            state.cond.notify_all()
            thread = state.thread
        with state.cond:
            channel = self._channel
        channel.close()  # also cancels a request in flight
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._config.timeout)

    def _start(self) -> None:
        state = self._state
        if state.thread is None and not state.closed:
            state.thread = threading.Thread(
                target=self._run, name="bearer-grpc-token-renewal", daemon=True
            )
            state.thread.start()

    def _run(self) -> None:
        state = self._state
        while True:
            with state.cond:
                while not state.closed and not self._renewal.due(self._config.clock()):
                    wait = self._renewal.seconds_until_due(self._config.clock())
                    state.cond.wait(min(wait, MAX_IDLE_WAIT))
                if state.closed:
                    return
                state.fetching = True
            requested_at = self._config.clock()
            outcome = self._fetch()
            with state.cond:
                state.fetching = False
                if state.closed:  # the request was cancelled by close(): nothing to record
                    return
                self._record(outcome, requested_at)
                state.completed += 1
                state.cond.notify_all()

    def _fetch(self) -> tuple[str, int] | BaseException:
        config = self._config
        try:
            return issued_token(self._issue(config.request, timeout=config.timeout))
        except Exception as err:  # the thread must live on; callers get the error
            if silent_link(err):
                self._replace_channel()
            return err


def record_outcome(
    renewal: Renewal,
    outcome: tuple[str, int] | BaseException,
    *,
    requested_at: float,
    now: float,
    client_id: str,
    target: str,
) -> None:
    """Apply one ``IssueToken`` outcome (token and lifetime, or error) and log it.

    The first failure of a run is a warning, repeats are debug lines, the recovery is
    an info line: an outage costs two lines, not one per retry.
    """
    if isinstance(outcome, BaseException):
        delay = renewal.failed(outcome, now=now, rand=random.random())
        code, _ = failure_text(target, outcome)
        level = logging.WARNING if renewal.failures == 1 else logging.DEBUG
        log.log(
            level,
            "token request failed; next attempt in %.1f s",
            delay,
            extra={"code": code.name, "client_id": client_id, "count": renewal.failures},
        )
        return
    failures = renewal.failures
    token, lifetime = outcome
    renewal.succeeded(token, requested_at=requested_at, lifetime=lifetime)
    if failures:
        log.info("token service reachable again", extra={"client_id": client_id})
    else:
        log.debug("access token renewed", extra={"client_id": client_id})
