"""The client side, written once and driven sync and aio: token sources, channels, echoes.

A test takes the ``flavour`` fixture (parametrized ``sync``/``aio``) and builds token
sources, channels and Echo servers through it; the aio flavour runs every coroutine on
an event loop in a thread of its own, so test bodies read the same for both. The Echo
(``bearer_grpc.testing``) answers with the metadata it received; a :class:`Gate` decides,
per call, whether the Echo refuses it as a bearer_grpc server would (with the same rich
status), and records what it saw. It is not bearer_grpc's server interceptor: these tests
check the client alone.

Everything is real: a TokenService from ``tests.harness.running_service``, servers on free
ports, real channels. Waiting is done on conditions with deadlines, never by sleeping
"long enough".
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc._status import to_status
from bearer_grpc.core.errors import AuthError, TokenRevoked
from bearer_grpc.core.keys import PublicKeySet
from bearer_grpc.core.tokens import TokenVerifier
from bearer_grpc.service.admin import NewClient
from bearer_grpc.testing import (
    Answer,
    Echo,
    FrozenClock,
    Kind,
    LoopThread,
    call,
    call_aio,
    serve,
    serve_aio,
)
from tests.harness import RunningService

DEADLINE = 10.0
"""Longest any test waits for a condition."""
FAST_BACKOFF = bearer_grpc.Backoff(initial=0.05, maximum=0.2)
"""Retry an unreachable TokenService quickly, so recovery deadlines stay short."""


class Counter:
    """A thread-safe count that tests can wait on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.value = 0

    def add(self) -> None:
        """Count one more."""
        with self._cond:
            self.value += 1
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = DEADLINE) -> None:
        """Wait until the count reaches ``n``; fail after ``timeout`` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.value >= n, timeout):
                raise AssertionError(f"count stayed at {self.value}, expected {n}")


class IssueSpy:
    """Counts the TokenService's IssueToken requests (the real servicer calls through
    it) and can hold them back: while ``gate`` is clear, requests wait for it."""

    def __init__(self, service: RunningService, monkeypatch: pytest.MonkeyPatch) -> None:
        self.requests = Counter()
        self.gate = threading.Event()
        self.gate.set()
        issue = service.authority.issue_async

        async def spied_issue(*args: Any, **kwargs: Any) -> Any:
            self.requests.add()
            if not await asyncio.to_thread(self.gate.wait, DEADLINE):
                raise AssertionError("IssueToken held back too long")
            return await issue(*args, **kwargs)

        monkeypatch.setattr(service.authority, "issue_async", spied_issue)

    @property
    def count(self) -> int:
        """IssueToken requests so far."""
        return self.requests.value


def verifier_for(service: RunningService, clock: FrozenClock) -> TokenVerifier:
    """A verifier of the service's tokens on ``clock``, with no leeway at all."""
    keys = PublicKeySet.from_json(service.authority.jwks())
    return TokenVerifier(keys, issuer=service.authority.settings.issuer, clock=clock, leeway=0)


@dataclass
class Gate:
    """What the Echo lets through (its ``refuse`` hook), and what it saw.

    Attributes:
        reject: Reject a call carrying this token (None: no token) with ``reject_with``.
        reject_with: The error a rejected call ends with (TOKEN_REVOKED by default).
        verifier: When set, every token must pass ``authenticate(token, audience=...)``;
            failures are recorded in ``failures`` and rejected.
        audience: The audience the verifier requires.
        seen: The ``authorization`` values of every call, in arrival order.
        failures: ErrorInfo reasons of tokens the verifier refused.
    """

    reject: Callable[[str | None], bool] = lambda _token: False
    reject_with: AuthError = field(default_factory=TokenRevoked)
    verifier: TokenVerifier | None = None
    audience: str = "orders"
    seen: list[list[str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, metadata: Any) -> grpc.Status | None:
        """The status to end a call with, or None to answer it."""
        values = [str(value) for key, value in metadata if key == "authorization"]
        with self.lock:
            self.seen.append(values)
        token = values[-1].removeprefix("Bearer ") if values else None
        if self.reject(token):
            return to_status(self.reject_with)
        if self.verifier is not None:
            try:
                self.verifier.authenticate(token or "", audience=self.audience)
            except AuthError as err:
                with self.lock:
                    self.failures.append(err.reason)
                return to_status(err)
        return None

    def tokens(self) -> list[str | None]:
        """The token of each call, in arrival order."""
        with self.lock:
            return [v[-1].removeprefix("Bearer ") if v else None for v in self.seen]


def reject_first_token() -> Callable[[str | None], bool]:
    """A ``Gate.reject`` that refuses the first token it sees (every time it comes)."""
    first: list[str | None] = []

    def reject(token: str | None) -> bool:
        if not first:
            first.append(token)
        return token == first[0]

    return reject


def reject_all(_token: str | None) -> bool:
    """A ``Gate.reject`` that refuses every call."""
    return True


def token_of(answer: Answer) -> str | None:
    """The token of the last ``authorization: Bearer`` entry an answer reports."""
    values = answer.authorization
    return values[-1].removeprefix("Bearer ") if values else None


class Source:
    """A token source of either flavour, driven from the test thread."""

    def __init__(self, raw: Any, loop: LoopThread | None) -> None:
        self.raw = raw
        self._loop = loop

    def token(self) -> str:
        """The source's current token (aio: awaited on the loop)."""
        if self._loop is None:
            token: str = self.raw.token()
            return token
        return self._loop.run(self.raw.token())

    def close(self) -> None:
        """``close()``, or ``aclose()`` on the loop."""
        if self._loop is None:
            self.raw.close()
        else:
            self._loop.run(self.raw.aclose())


class CountingSource:
    """Wraps a token source of either flavour and counts the callers of ``token()``."""

    def __init__(self, inner: Any, flavour: str) -> None:
        self.inner = inner
        self.entered = Counter()
        if flavour == "aio":
            self.token = self._token_aio  # type: ignore[method-assign,assignment]

    def token(self) -> str:
        self.entered.add()
        token: str = self.inner.token()
        return token

    async def _token_aio(self) -> str:
        self.entered.add()
        token: str = await self.inner.token()
        return token

    def invalidate(self, token: str) -> None:
        self.inner.invalidate(token)


class Channel:
    """A channel of either flavour, driven from the test thread."""

    def __init__(self, raw: Any, loop: LoopThread | None) -> None:
        self.raw = raw
        self._loop = loop

    def call(self, kind: Kind = "unary_unary", **options: Any) -> list[Answer]:
        """``bearer_grpc.testing.call`` (aio: ``call_aio`` on the loop)."""
        if self._loop is None:
            return call(self.raw, kind, **options)
        return self._loop.run(call_aio(self.raw, kind, **options))

    def token(self) -> str | None:
        """The token a unary call carried."""
        (answer,) = self.call()
        return token_of(answer)

    def attempt(self) -> list[Answer] | None:
        """A unary call's answers, or None if it failed."""
        try:
            return self.call()
        except grpc.RpcError:
            return None

    def concurrent_tokens(self, count: int) -> list[str | None]:
        """``count`` unary calls at once; the token each carried (threads, or tasks)."""
        if self._loop is None:
            with ThreadPoolExecutor(count) as pool:
                return list(pool.map(lambda _: self.token(), range(count)))

        async def all_() -> list[str | None]:
            answers = await asyncio.gather(
                *(call_aio(self.raw, "unary_unary") for _ in range(count))
            )
            return [token_of(answer) for (answer,) in answers]

        return self._loop.run(all_())

    def close(self) -> None:
        """Close the channel."""
        if self._loop is None:
            self.raw.close()
        else:
            self._loop.run(self.raw.close())


class Flavour:
    """Builds clients and servers of one flavour; closes what it built after the test.

    Attributes:
        name: ``sync`` or ``aio``.
        bearer: ``bearer_grpc`` or ``bearer_grpc.aio``.
        loop: The aio flavour's event loop thread (None for sync).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.bearer: Any = bearer_grpc if name == "sync" else bearer_grpc.aio
        self.loop = LoopThread() if name == "aio" else None
        self._stack = ExitStack()

    def _run(self, make: Callable[[], Any]) -> Any:
        """Run ``make`` here (sync) or on the loop (aio: grpc.aio objects bind to it)."""
        if self.loop is None:
            return make()

        async def on_loop() -> Any:
            return make()

        return self.loop.run(on_loop())

    def serve(self, echo: Echo, credentials: grpc.ServerCredentials | None = None) -> str:
        """Serve ``echo`` on a server of this flavour until the test ends; its target."""
        if self.loop is None:
            return self._stack.enter_context(serve([echo.handler()], credentials=credentials))
        serving = serve_aio([echo.aio_handler()], credentials=credentials)
        return self._stack.enter_context(self.loop.context(serving))

    def credentials(self, service: RunningService, client: NewClient, **options: Any) -> Source:
        """``ClientCredentials`` of ``client`` at ``service`` (closed after the test)."""
        return self.credentials_at(service.target, client, **options)

    def credentials_at(
        self, target: str, client: NewClient, *, secret: str | None = None, **options: Any
    ) -> Source:
        """``ClientCredentials`` of ``client`` at ``target`` (closed after the test)."""
        secret = client.client_secret if secret is None else secret
        raw = self._run(
            lambda: self.bearer.ClientCredentials(target, client.client_id, secret, **options)
        )
        source = Source(raw, self.loop)
        self._stack.callback(source.close)
        return source

    def static(self, token: str) -> Source:
        """``StaticToken(token)``."""
        return Source(self.bearer.StaticToken(token), self.loop)

    def channel(self, target: str, source: Any) -> Channel:
        """A plaintext channel to ``target`` sending ``source``'s tokens (a :class:`Source`
        or a raw token source); closed after the test."""
        raw_source = source.raw if isinstance(source, Source) else source
        interceptor = self.bearer.BearerClientInterceptor(raw_source)
        if self.loop is None:
            raw = grpc.intercept_channel(grpc.insecure_channel(target), interceptor)
        else:
            raw = self._run(lambda: grpc.aio.insecure_channel(target, interceptors=interceptor))
        channel = Channel(raw, self.loop)
        self._stack.callback(channel.close)
        return channel

    def secure_channel(self, target: str, credentials: grpc.ChannelCredentials) -> Channel:
        """A channel with ``credentials`` (call credentials composed onto local ones)."""
        if self.loop is None:
            raw = grpc.secure_channel(target, credentials)
        else:
            raw = self._run(lambda: grpc.aio.secure_channel(target, credentials))
        channel = Channel(raw, self.loop)
        self._stack.callback(channel.close)
        return channel

    def close(self) -> None:
        """Close everything built, newest first, then the loop."""
        self._stack.close()
        if self.loop is not None:
            self.loop.close()


@pytest.fixture(params=["sync", "aio"])
def flavour(request: pytest.FixtureRequest) -> Iterator[Flavour]:
    """Clients and servers of the sync and the aio flavour."""
    built = Flavour(request.param)
    yield built
    built.close()


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock at a whole second near the real time."""
    return FrozenClock(float(int(time.time())))


@pytest.fixture
def spy(service: RunningService, monkeypatch: pytest.MonkeyPatch) -> IssueSpy:
    """Counts ``service``'s IssueToken requests (the test's own service)."""
    return IssueSpy(service, monkeypatch)


@pytest.fixture
def own_client(service: RunningService) -> NewClient:
    """A client of the test's own ``service`` (where a :class:`IssueSpy` counts)."""
    return service.add_client()


@pytest.fixture
def gate() -> Gate:
    """The refusals and records of the test's Echo; change it before calls are made."""
    return Gate()


@pytest.fixture
def echo(flavour: Flavour, gate: Gate) -> str:
    """An Echo of the test's flavour that asks ``gate``; its target."""
    return flavour.serve(Echo(refuse=gate))
