"""The TokenService goes down and comes back (a ``bearer-grpc serve`` process, killed and
restarted on the same address and store), sync and aio.

- Local verifiers (``from_token_service``) keep verifying with their last known good keys
  and keep refusing tokens revoked before the outage; a token revoked while they were cut
  off is refused once their stream is back.
- Remote verifiers refuse fresh tokens with UNAVAILABLE while the service is down (fail
  closed) and recover by themselves.
- ``ClientCredentials`` sources back off while the service answers UNAVAILABLE (the
  calls reaching it are counted by a :class:`StandIn`) and, once it is back, the same
  source hands out a fresh token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from bearer_grpc import Backoff, ClientCredentials
from bearer_grpc import aio as bearer_aio
from bearer_grpc.store import open_store
from bearer_grpc.testing import KINDS
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.faults.conftest import (
    AUDIENCE,
    TIMEOUT,
    Deployment,
    build_verifier,
    close_verifier,
    echo_status,
    issue_token,
    stand_in,
    token_stub,
)
from tests.harness import LoopThread, protect, wait_until

pytestmark = pytest.mark.process

FAST = Backoff(initial=0.05, maximum=0.5)
RECOVERY = 15.0
"""Deadline for a verifier or source to notice the service is back."""
WINDOW = 2.0
"""How long sources are driven against the stand-in."""
OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


@pytest.fixture(params=["sync", "aio"])
def flavour(request: pytest.FixtureRequest) -> Iterator[tuple[str, LoopThread | None]]:
    """``sync`` or ``aio``, with the event loop the aio flavour runs on."""
    loop = LoopThread() if request.param == "aio" else None
    yield request.param, loop
    if loop is not None:
        loop.close()


def claims_of(token: str) -> dict[str, Any]:
    """The (unverified) payload of a JWT."""
    segment = token.split(".")[1]
    payload: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return payload


def revoke_in_store(deployment: Deployment, token: str) -> None:
    """Revoke ``token`` by writing to the store directly (no server running)."""
    claims = claims_of(token)
    store = open_store(deployment.url)
    try:
        store.revoke(claims["jti"], claims["exp"], int(time.time()))
    finally:
        store.close()


def max_attempts(backoff: Backoff, window: float) -> int:
    """The most requests a source backing off with ``backoff`` can start in ``window``
    seconds: each delay is at least half its bound (equal jitter), plus one for the
    request in flight when the window opens and one for the edge."""
    attempts, elapsed, bound = 1, 0.0, backoff.initial
    while elapsed <= window:
        elapsed += bound / 2
        bound = min(backoff.maximum, bound * backoff.multiplier)
        attempts += 1
    return attempts + 1


def test_verifiers_ride_out_an_outage(
    deployment: Deployment, flavour: tuple[str, LoopThread | None]
) -> None:
    name, loop = flavour
    secret = deployment.add_client("svc")
    deployment.start()
    target = deployment.target
    with token_stub(target) as stub:
        tokens = [issue_token(stub, "svc", secret) for _ in range(12)]
        revoked_before = tokens.pop()
        stub.RevokeToken(pb.RevokeTokenRequest(token=revoked_before), timeout=TIMEOUT)
    warm, during_local, during_remote = tokens[0], tokens[1:5], tokens[5:9]
    revoked_offline, revoked_after_restart, after = tokens[9], tokens[10], tokens[0]

    local = build_verifier(name, "from_token_service", target, backoff=FAST, startup_timeout=10)
    remote = build_verifier(name, "remote", target, backoff=FAST, timeout=1.0)
    try:
        with (
            protect(name, local, loop=loop) as local_server,
            protect(name, remote, loop=loop) as remote_server,
        ):
            for server in (local_server, remote_server):
                assert echo_status(server.target, "unary_unary", warm) == OK
                assert echo_status(server.target, "unary_unary", revoked_before) == UNAUTHENTICATED
            # the offline victim was verified (and cached) before the outage
            assert echo_status(local_server.target, "unary_unary", revoked_offline) == OK

            deployment.kill()

            # local: new tokens verify with the last known keys, revoked stay refused
            for kind, token in zip(KINDS, during_local, strict=True):
                assert echo_status(local_server.target, kind, token) == OK, kind
                assert echo_status(local_server.target, kind, revoked_before) == UNAUTHENTICATED
            # remote: a token it never saw cannot be checked: fail closed
            for kind, token in zip(KINDS, during_remote, strict=True):
                assert echo_status(remote_server.target, kind, token) == UNAVAILABLE, kind
            assert echo_status(remote_server.target, "unary_unary", revoked_before) != OK

            revoke_in_store(deployment, revoked_offline)  # while every verifier is cut off
            assert echo_status(local_server.target, "unary_unary", revoked_offline) == OK

            deployment.start()  # same address, same store
            with token_stub(target) as stub:
                stub.RevokeToken(
                    pb.RevokeTokenRequest(token=revoked_after_restart), timeout=TIMEOUT
                )

            def refused(token: str) -> bool:
                status = echo_status(local_server.target, "unary_unary", token)
                assert status in (OK, UNAUTHENTICATED), status
                return status == UNAUTHENTICATED

            wait_until(lambda: refused(revoked_offline), timeout=RECOVERY)
            wait_until(lambda: refused(revoked_after_restart), timeout=RECOVERY)
            for kind in KINDS:
                assert echo_status(local_server.target, kind, revoked_offline) == UNAUTHENTICATED
                assert echo_status(local_server.target, kind, after) == OK

            # remote recovers by itself: the tokens it could not check now pass
            wait_until(
                lambda: echo_status(remote_server.target, "unary_unary", during_remote[0]) == OK,
                timeout=RECOVERY,
            )
            for kind, token in zip(KINDS, during_remote, strict=True):
                assert echo_status(remote_server.target, kind, token) == OK, kind
            assert echo_status(remote_server.target, "unary_unary", revoked_offline) == (
                UNAUTHENTICATED
            )
    finally:
        close_verifier(local, loop)
        close_verifier(remote, loop)


def test_client_credentials_back_off_then_recover(
    deployment: Deployment, flavour: tuple[str, LoopThread | None]
) -> None:
    _, loop = flavour
    secret = deployment.add_client("svc")
    deployment.start()
    target = deployment.target
    options: dict[str, Any] = {"backoff": FAST, "timeout": 1.0}
    source: Any = (
        ClientCredentials(target, "svc", secret, **options)
        if loop is None
        else bearer_aio.ClientCredentials(target, "svc", secret, **options)
    )

    def token() -> str:
        if loop is None:
            value: str = source.token()
        else:
            value = loop.run(source.token())
        return value

    def hammer(seconds: float) -> tuple[int, int]:
        """Ask for a token as fast as possible for ``seconds``: (asked, refused)."""
        if loop is not None:
            result: tuple[int, int] = loop.run(_ahammer(source, seconds))
            return result
        asked = refused = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            asked += 1
            try:
                source.token()
            except grpc.RpcError as err:
                assert err.code() is UNAVAILABLE  # type: ignore[attr-defined]
                refused += 1
        return asked, refused

    try:
        first = token()
        deployment.kill()
        with stand_in(target) as held:
            source.invalidate(first)  # e.g. a server called it revoked: a new one is needed
            asked, refused = hammer(WINDOW)
            attempts = held.count("IssueToken")
        assert refused == asked  # no token could be had, and every caller was told so
        assert 1 <= attempts <= max_attempts(FAST, WINDOW), (attempts, asked)
        assert asked > 10 * attempts  # callers did not pace the requests: the source did

        deployment.start()
        fresh = wait_until(lambda: _or_none(token), timeout=RECOVERY)
        assert fresh != first
        with token_stub(target) as stub:
            answer = stub.VerifyToken(
                pb.VerifyTokenRequest(token=fresh, audience=AUDIENCE), timeout=TIMEOUT
            )
        assert answer.active
    finally:
        if loop is None:
            source.close()
        else:
            loop.run(source.aclose())


def _or_none(token: Any) -> str | None:
    try:
        value: str = token()
    except grpc.RpcError:
        return None
    return value


async def _ahammer(source: bearer_aio.ClientCredentials, seconds: float) -> tuple[int, int]:
    asked = refused = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        asked += 1
        try:
            await source.token()
        except grpc.aio.AioRpcError as err:
            assert err.code() is UNAVAILABLE
            refused += 1
        await asyncio.sleep(0)  # let the renewal task run: this is a yield, not a wait
    return asked, refused
