"""Token sources for sync clients: where a client gets its bearer token.

- :class:`StaticToken` hands out a token that comes from elsewhere.
- :class:`ClientCredentials` requests tokens from the TokenService's client-credentials
  grant and renews them in a daemon thread.

``token()`` returns a bearer token, ``invalidate(token)`` says a server called it
expired or revoked. The rules both flavours share are in
:mod:`bearer_grpc._client.common`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from bearer_grpc._channel import Connection, silent_link
from bearer_grpc._client.common import (
    MAX_IDLE_WAIT,
    ClientCredentialsBase,
    StaticTokenBase,
    failure_text,
    issued_token,
)
from bearer_grpc._closing import Closing
from bearer_grpc.core.errors import BearerGrpcError
from bearer_grpc.core.renewal import Failed, Ready


class TokenSource(Protocol):
    """Where a sync client gets its bearer token."""

    def token(self) -> str:
        """Return a usable token (may wait for the first one; never for a renewal)."""
        ...

    def invalidate(self, token: str) -> None:
        """Hint that a server rejected ``token`` as expired or revoked."""
        ...


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


class StaticToken(StaticTokenBase):
    """A token that comes from elsewhere, used as it is (``repr`` hides it).

    Args:
        token: The bearer token, without ``Bearer``.

    Raises:
        ValueError: ``token`` is not one b64token.
    """

    def token(self) -> str:
        """Return the token."""
        return self._token


@dataclass
class _Session:
    """State shared between callers and the renewal thread (guarded by ``cond``)."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    thread: threading.Thread | None = None
    fetching: bool = False
    completed: int = 0
    closed: bool = False


class ClientCredentials(ClientCredentialsBase, Closing):
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
        self._state = _Session()
        self._connection = Connection(self._config.endpoint)

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
        self._connection.close()  # also cancels a request in flight
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
            outcome = self._request_token()
            with state.cond:
                state.fetching = False
                if state.closed:  # the request was cancelled by close(): nothing to record
                    return
                self._record(outcome, requested_at)
                state.completed += 1
                state.cond.notify_all()

    def _request_token(self) -> tuple[str, int] | BaseException:
        config = self._config
        try:
            stub = self._connection.stub
            return issued_token(stub.IssueToken(config.request, timeout=config.timeout))
        except Exception as err:  # the thread must live on; callers get the error
            if silent_link(err):  # a silently dead connection: gRPC would keep using it
                self._connection.replace()
            return err
