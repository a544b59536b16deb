"""Verifiers against a real TokenService, written once and driven sync and aio.

A test takes the ``flavour`` fixture (parametrized ``sync``/``aio``) and builds
verifiers through it; the aio flavour runs the verifier's coroutines on an event loop
in a thread of its own, so test bodies read the same for both.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import pytest

from bearer_grpc import Backoff, Verifier
from bearer_grpc import aio as bearer_aio
from bearer_grpc.core.errors import AuthError
from bearer_grpc.core.keys import SigningKey
from bearer_grpc.core.tokens import Principal, issue_access_token
from bearer_grpc.service.server import ServeConfig
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import sqlite_url
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import LoopThread, RunningService, running_service

SETTINGS = ServiceSettings(sync_interval=0.1)
FAST = Backoff(initial=0.05, maximum=0.5)
"""Reconnect quickly, so recovery deadlines stay short."""


class Handle(Protocol):
    """A verifier as a test drives it, whatever its flavour."""

    verifier: Any

    def verify(self, token: str) -> Principal: ...
    def lookup(self, token: str) -> Principal | None: ...
    def verify_all(self, tokens: list[str]) -> list[Principal | BaseException]: ...
    def close(self) -> None: ...
    def background_done(self) -> bool: ...


class SyncHandle:
    """Drives a ``bearer_grpc.Verifier`` from the test thread (and a thread pool)."""

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    def verify(self, token: str) -> Principal:
        return self.verifier.verify(token)

    def lookup(self, token: str) -> Principal | None:
        return self.verifier.lookup(token)

    def verify_all(self, tokens: list[str]) -> list[Principal | BaseException]:
        start = threading.Barrier(len(tokens))

        def one(token: str) -> Principal | BaseException:
            start.wait(10)  # all at once
            try:
                return self.verifier.verify(token)
            except AuthError as err:
                return err

        with ThreadPoolExecutor(len(tokens)) as pool:
            return list(pool.map(one, tokens))

    def close(self) -> None:
        self.verifier.close()

    def background_done(self) -> bool:
        thread = self.verifier.thread
        return thread is not None and not thread.is_alive()


class AioHandle:
    """Drives a ``bearer_grpc.aio.Verifier`` on an event loop in another thread."""

    def __init__(self, verifier: bearer_aio.Verifier, loop: LoopThread) -> None:
        self.verifier = verifier
        self.loop = loop

    def verify(self, token: str) -> Principal:
        result: Principal = self.loop.run(self.verifier.verify(token))
        return result

    def lookup(self, token: str) -> Principal | None:
        async def lookup() -> Principal | None:
            return self.verifier.lookup(token)

        result: Principal | None = self.loop.run(lookup())
        return result

    def verify_all(self, tokens: list[str]) -> list[Principal | BaseException]:
        async def all_() -> list[Principal | BaseException]:
            calls = (self.verifier.verify(token) for token in tokens)
            return await asyncio.gather(*calls, return_exceptions=True)

        result: list[Principal | BaseException] = self.loop.run(all_())
        return result

    def close(self) -> None:
        self.loop.run(self.verifier.aclose())

    def background_done(self) -> bool:
        task = self.verifier.task
        return task is not None and task.done()


class Flavour:
    """Builds verifiers of one flavour and closes them after the test."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = LoopThread() if name == "aio" else None
        self.handles: list[Handle] = []

    def _wrap(self, build: Callable[..., Any], target: str, **options: Any) -> Handle:
        options.setdefault("audience", "orders")
        options.setdefault("backoff", FAST)
        verifier = build(target, **options)
        handle: Handle = (
            SyncHandle(verifier) if self.loop is None else AioHandle(verifier, self.loop)
        )
        self.handles.append(handle)
        return handle

    @property
    def cls(self) -> type[Verifier] | type[bearer_aio.Verifier]:
        return Verifier if self.loop is None else bearer_aio.Verifier

    def from_token_service(self, target: str, **options: Any) -> Handle:
        """``Verifier.from_token_service`` (audience ``orders``, fast backoff by default)."""
        return self._wrap(self.cls.from_token_service, target, **options)

    def remote(self, target: str, **options: Any) -> Handle:
        """``Verifier.remote`` (audience ``orders``, fast backoff by default)."""
        return self._wrap(self.cls.remote, target, **options)

    def close(self) -> None:
        for handle in self.handles:
            handle.close()
        if self.loop is not None:
            self.loop.close()


@pytest.fixture(params=["sync", "aio"])
def flavour(request: pytest.FixtureRequest) -> Iterator[Flavour]:
    """Verifier builders of the sync and the aio flavour."""
    built = Flavour(request.param)
    yield built
    built.close()


@pytest.fixture
def store_url(data_dir: Path) -> str:
    """The SQLite store of the test's TokenService."""
    return sqlite_url(data_dir)


@pytest.fixture
def service(store_url: str) -> Iterator[RunningService]:
    """A TokenService that reads other processes' store writes every 0.1 s."""
    with running_service(store_url, settings=SETTINGS) as running:
        yield running


def stop(service: RunningService) -> None:
    """Stop the TokenService now (its port closes; ``running_service`` stops it again)."""
    service.loop.run(service.server.stop(grace=0))


@contextmanager
def restarted(store_url: str, target: str) -> Iterator[RunningService]:
    """A new TokenService on the same store and the same address as a stopped one."""
    config = ServeConfig(listen=target, grace=0)
    with running_service(store_url, settings=SETTINGS, config=config) as running:
        yield running


def revoke(service: RunningService, token: str) -> int:
    """RevokeToken by value through the service; returns the event's sequence."""
    response = service.stub().RevokeToken(pb.RevokeTokenRequest(token=token), timeout=10)
    return response.sequence


def issue(service: RunningService) -> str:
    """A fresh access token for audience ``orders`` from a new client."""
    client = service.add_client(f"client-{time.monotonic_ns()}")
    return service.issue(client).access_token


def foreign_token(issuer: str, audience: str = "orders") -> str:
    """A well-formed token signed by a key nobody publishes (an unknown ``kid``)."""
    issued = issue_access_token(
        SigningKey.generate("ES256"),
        issuer=issuer,
        subject="mallory",
        audience=audience,
        scopes=["orders.read"],
        client_id="mallory",
        lifetime=300,
        now=int(time.time()),
    )
    return issued.token


def refused(call: Callable[[], object], error: type[AuthError]) -> bool:
    """Whether ``call()`` raises ``error`` (False when it succeeds)."""
    try:
        call()
    except error:
        return True
    return False


def closed_port_target() -> str:
    """``127.0.0.1:PORT`` where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"
