"""Fixtures for the client tests: echo servers, a controllable clock, an IssueToken spy.

Everything is real: a TokenService from ``tests.harness.running_service``, echo servers
on free ports, real channels. Waiting is done on conditions with deadlines, never by
sleeping "long enough".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bearer_grpc.core.keys import PublicKeySet
from bearer_grpc.core.tokens import TokenVerifier
from bearer_grpc.service.admin import NewClient
from bearer_grpc.testing import FrozenClock
from tests.client._echo import EchoServer, Gate, sync_echo_server
from tests.harness import RunningService

DEADLINE = 10.0
"""Longest any test waits for a condition."""


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

    def __init__(self, service: RunningService) -> None:
        self.requests = Counter()
        self.gate = threading.Event()
        self.gate.set()
        authority = service.authority
        issue = authority.issue

        def spied_issue(*args: Any, **kwargs: Any) -> Any:
            self.requests.add()
            if not self.gate.wait(DEADLINE):
                raise AssertionError("IssueToken held back too long")
            return issue(*args, **kwargs)

        authority.issue = spied_issue  # type: ignore[method-assign]

    @property
    def count(self) -> int:
        """IssueToken requests so far."""
        return self.requests.value


def verifier_for(service: RunningService, clock: FrozenClock) -> TokenVerifier:
    """A verifier of the service's tokens on ``clock``, with no leeway at all."""
    keys = PublicKeySet.from_json(service.authority.jwks())
    return TokenVerifier(keys, issuer=service.authority.settings.issuer, clock=clock, leeway=0)


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock at a whole second near the real time."""
    return FrozenClock(float(int(time.time())))


@pytest.fixture
def client(service: RunningService) -> NewClient:
    """A client of ``service`` allowed the audience ``orders``."""
    return service.add_client()


@pytest.fixture
def spy(service: RunningService) -> IssueSpy:
    """Counts ``service``'s IssueToken requests."""
    return IssueSpy(service)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    """A sync echo server that lets every call through."""
    with sync_echo_server(Gate()) as server:
        yield server
