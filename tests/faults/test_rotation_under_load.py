"""``bearer-grpc keys rotate`` against the store of a serving TokenService while clients
hammer protected servers (sync and aio, attached with ``from_token_service``).

Client threads keep issuing tokens (before, during and after two rotations in a row) and
calling every RPC kind with them, and with tokens issued before the rotations. No valid
token may be refused, and tokens signed by each new key must verify on both servers once
it signs (the second one well within the verifiers' ``refetch_interval`` of the first).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections import Counter
from dataclasses import dataclass, field

import grpc
import pytest

from bearer_grpc import Backoff
from bearer_grpc.testing import KINDS
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.faults.conftest import (
    TIMEOUT,
    Deployment,
    build_verifier,
    close_verifier,
    echo_status,
    issue_token,
    token_stub,
)
from tests.harness import LoopThread, protect, wait_until

pytestmark = pytest.mark.process

CLIENTS_PER_SERVER = 3
FRESH_EVERY = 5
"""A client issues itself a new token every this many calls."""
NEW_KEY_CALLS = 8
"""Calls with new-key tokens each server must serve before the load stops."""
ROTATIONS = 2
LOAD_SECONDS = 60.0
"""Upper bound of the whole load phase (a deadline: it normally ends much sooner)."""


def kid_of(token: str) -> str:
    segment = token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    kid: str = header["kid"]
    return kid


@dataclass
class Load:
    """What the clients saw."""

    ok: Counter[tuple[str, str]] = field(default_factory=Counter)  # (server, kid) -> calls
    refused: list[tuple[str, str, str, grpc.StatusCode]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def record(self, server: str, kind: str, token: str, status: grpc.StatusCode) -> None:
        with self.lock:
            if status == grpc.StatusCode.OK:
                self.ok[server, kid_of(token)] += 1
            else:
                self.refused.append((server, kind, kid_of(token), status))

    def served(self, server: str, kid: str) -> int:
        with self.lock:
            return self.ok[server, kid]


def test_rotation_refuses_no_valid_token(deployment: Deployment) -> None:
    secret = deployment.add_client("svc")
    deployment.start()
    target = deployment.target
    with token_stub(target) as stub:
        old_tokens = [issue_token(stub, "svc", secret) for _ in range(4)]
    old_kid = kid_of(old_tokens[0])
    loop = LoopThread()
    backoff = Backoff(initial=0.05, maximum=0.5)
    sync_verifier = build_verifier("sync", "from_token_service", target, backoff=backoff)
    aio_verifier = build_verifier("aio", "from_token_service", target, backoff=backoff)
    load = Load()
    kinds = itertools.cycle(KINDS)

    def client(name: str, echo: str, number: int) -> None:
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.TokenServiceStub(channel)
            calls = 0
            token = old_tokens[number % len(old_tokens)]
            while not load.stop.is_set():
                if calls % FRESH_EVERY == 0:
                    token = issue_token(stub, "svc", secret)
                use = old_tokens[calls % len(old_tokens)] if calls % 3 == 0 else token
                kind = next(kinds)
                load.record(name, kind, use, echo_status(echo, kind, use))
                calls += 1

    try:
        with (
            protect("sync", sync_verifier) as sync_server,
            protect("aio", aio_verifier, loop=loop) as aio_server,
        ):
            servers = {"sync": sync_server.target, "aio": aio_server.target}
            threads = [
                threading.Thread(target=client, args=(name, echo, i), name=f"{name}-{i}")
                for name, echo in servers.items()
                for i in range(CLIENTS_PER_SERVER)
            ]
            for thread in threads:
                thread.start()
            try:
                wait_until(lambda: all(load.served(n, old_kid) >= 10 for n in servers))
                # Twice in a row: the second new key must not wait for the first one's
                # refetch_interval (30 s) to verify.
                for _ in range(ROTATIONS):
                    _rotate_and_wait(deployment, secret, load, list(servers))
            finally:
                load.stop.set()
                for thread in threads:
                    thread.join(TIMEOUT * 2)
            for name, echo in servers.items():  # the old key's tokens still verify
                for token in old_tokens:
                    assert echo_status(echo, "unary_unary", token) == grpc.StatusCode.OK, name
    finally:
        close_verifier(sync_verifier, None)
        close_verifier(aio_verifier, loop)
        loop.close()
    assert load.refused == []
    assert all(load.served(name, old_kid) > 0 for name in servers)


def _rotate_and_wait(deployment: Deployment, secret: str, load: Load, servers: list[str]) -> None:
    """``keys rotate --delay 2``; wait until the service signs with the new key and every
    server served ``NEW_KEY_CALLS`` calls with its tokens."""
    # Two seconds of staging, not one: a verifier starts unknown-kid refetches at least a
    # second apart whatever the kid (REFETCH_SPACING), so a key that starts signing less than
    # a second after the previous key's refetch has its first tokens refused until then.
    rotated = deployment.cli().ok("keys", "rotate", "--delay", "2", "--json")
    new_kid = json.loads(rotated.stdout)["kid"]
    timeout = LOAD_SECONDS / 2 / ROTATIONS
    wait_until(lambda: _issued_kid(deployment.target, secret) == new_kid, timeout=timeout)
    wait_until(
        lambda: all(load.served(name, new_kid) >= NEW_KEY_CALLS for name in servers),
        timeout=timeout,
    )


def _issued_kid(target: str, secret: str) -> str:
    with token_stub(target) as stub:
        return kid_of(issue_token(stub, "svc", secret))
