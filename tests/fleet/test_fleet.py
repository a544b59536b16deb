"""Three ``bearer-grpc serve`` replicas on one PostgreSQL store behave as one service.

Deadlines of one second are measured from the acknowledgement of the write on another
replica; the replicas poll only every 30 s, so meeting them takes ``LISTEN/NOTIFY``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import grpc
import psycopg
import pytest

from bearer_grpc import Backoff, Verifier
from bearer_grpc._verifier.revocations import watch_request
from bearer_grpc.core.errors import TokenRevoked
from bearer_grpc.core.keys import is_sealed
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.fleet.conftest import PASSWORD, Fleet, add_user
from tests.harness import assert_one_line_error, jwt_segment, wait_until

pytestmark = [pytest.mark.process, pytest.mark.postgres]

FAN_OUT_DEADLINE = 1.0
"""Longest a change committed through one replica may take to reach another's watchers."""


@pytest.fixture
def verifier_at_c(fleet: Fleet) -> Iterator[Verifier]:
    """A local verifier following replica ``c`` (its keys and WatchRevocations)."""
    verifier = Verifier.from_token_service(
        fleet.replicas["c"].target, audience="orders", backoff=Backoff(0.05, 0.5)
    )
    try:
        yield verifier
    finally:
        verifier.close()


def _left(since: float) -> float:
    """What is left of :data:`FAN_OUT_DEADLINE` counted from ``since`` (monotonic)."""
    return max(0.0, since + FAN_OUT_DEADLINE - time.monotonic())


def _refused(verifier: Verifier, token: str) -> bool:
    try:
        verifier.verify(token)
    except TokenRevoked:
        return True
    return False


def test_token_issued_on_a_verifies_on_b_and_c(fleet: Fleet) -> None:
    token = fleet.issue("a")
    for name in ("b", "c"):
        answer = fleet.verify(name, token)
        assert answer.active, answer.reason
        assert answer.subject == "orders-client"


def test_revocation_on_b_reaches_a_verifier_attached_to_c_within_a_second(
    fleet: Fleet, verifier_at_c: Verifier
) -> None:
    token = fleet.issue("a")
    assert verifier_at_c.verify(token).subject == "orders-client"

    fleet.at("b").RevokeToken(pb.RevokeTokenRequest(token=token), timeout=10)
    acknowledged = time.monotonic()
    wait_until(lambda: _refused(verifier_at_c, token), timeout=FAN_OUT_DEADLINE, interval=0.002)
    latency = time.monotonic() - acknowledged
    print(f"cross-replica revocation latency: {latency * 1000:.1f} ms")
    wait_until(  # and the replica that issued the token refuses it too
        lambda: fleet.verify("a", token).reason == "TOKEN_REVOKED",
        timeout=_left(acknowledged),
    )


def test_refresh_reuse_at_b_of_a_token_rotated_at_a_revokes_the_family(fleet: Fleet) -> None:
    with fleet.store() as store:
        add_user(store, "bob")
    login = fleet.at("a").IssueToken(
        pb.IssueTokenRequest(password=pb.PasswordGrant(username="bob", password=PASSWORD)),
        timeout=10,
    )
    rotated = fleet.at("a").IssueToken(
        pb.IssueTokenRequest(refresh_token=pb.RefreshTokenGrant(refresh_token=login.refresh_token)),
        timeout=10,
    )
    assert fleet.verify("c", rotated.access_token).active

    with pytest.raises(grpc.RpcError) as reuse:
        fleet.at("b").IssueToken(
            pb.IssueTokenRequest(
                refresh_token=pb.RefreshTokenGrant(refresh_token=login.refresh_token)
            ),
            timeout=10,
        )
    assert reuse.value.code() == grpc.StatusCode.UNAUTHENTICATED
    acknowledged = time.monotonic()

    for token in (login.access_token, rotated.access_token):
        wait_until(
            lambda token=token: fleet.verify("c", token).reason == "TOKEN_REVOKED",  # type: ignore[misc]
            timeout=_left(acknowledged),
        )
    with pytest.raises(grpc.RpcError) as successor:
        fleet.at("c").IssueToken(
            pb.IssueTokenRequest(
                refresh_token=pb.RefreshTokenGrant(refresh_token=rotated.refresh_token)
            ),
            timeout=10,
        )
    assert successor.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _kids(fleet: Fleet, name: str) -> set[str]:
    jwks = fleet.at(name).GetJwks(pb.GetJwksRequest(), timeout=5).jwks_json
    return {key["kid"] for key in json.loads(jwks)["keys"]}


def test_keys_rotate_from_the_cli_reaches_every_replica(
    fleet: Fleet, verifier_at_c: Verifier
) -> None:
    old_token = fleet.issue("a")
    old_kid = jwt_segment(old_token, 0)["kid"]

    # Without the key-encryption key the CLI refuses: it would store a key in the clear.
    refused = fleet.cli(
        "keys", "rotate", "--store", fleet.url, env={"BEARER_GRPC_KEY_ENCRYPTION_KEY": ""}
    )
    assert "encrypted" in assert_one_line_error(refused)

    staged = json.loads(
        fleet.cli.ok("keys", "rotate", "--store", fleet.url, "--delay", "1", "--json").stdout
    )
    new_kid = staged["kid"]
    published = time.monotonic()
    for name in ("a", "b", "c"):  # published everywhere before it signs
        wait_until(
            lambda name=name: new_kid in _kids(fleet, name),  # type: ignore[misc]
            timeout=_left(published),
        )
    with fleet.store() as store:
        record = next(r for r in store.list_keys() if r.kid == new_kid)
    assert is_sealed(record.private_key)  # encrypted at rest, like the replicas' own

    new_token = wait_until(
        lambda: (t := fleet.issue("a")) and jwt_segment(t, 0)["kid"] == new_kid and t
    )
    for name in ("b", "c"):
        assert fleet.verify(name, new_token).active
        assert fleet.verify(name, old_token).active, f"{old_kid} still published at {name}"
    assert verifier_at_c.verify(new_token).subject == "orders-client"
    assert verifier_at_c.verify(old_token).subject == "orders-client"


def test_dropped_listener_catches_up_when_it_reconnects(fleet: Fleet) -> None:
    """A revocation whose notification was lost reaches watchers when the listener is back.

    The row is written behind the store's back (no NOTIFY): only the catch-up read that
    follows the listener's reconnection can deliver it before the 30 s poll.
    """
    c = fleet.replicas["c"]
    watch = fleet.at("c").WatchRevocations(watch_request(0), timeout=30)
    token = fleet.issue("a")
    claims = jwt_segment(token, 1)
    with psycopg.connect(fleet.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO revocations (jti, expires_at, revoked_at) VALUES (%s, %s, %s)",
            (claims["jti"], claims["exp"], int(time.time())),
        )
    assert fleet.terminate("bearer-grpc-listener", c.proc.pid), "no listener session found"
    terminated = time.monotonic()
    try:
        for event in watch:
            if event.token_id == claims["jti"]:
                break
    finally:
        watch.cancel()
    assert time.monotonic() - terminated < 10  # the watch deadline is 30 s
    assert fleet.verify("c", token).reason == "TOKEN_REVOKED"
    assert wait_until(lambda: fleet.pids("bearer-grpc-listener", c.proc.pid))  # listening again


def test_terminated_store_sessions_are_replaced_without_an_error(fleet: Fleet) -> None:
    """Sessions killed under a replica (a restart, a failover) cost the client nothing."""
    a = fleet.replicas["a"]
    fleet.issue("a")  # the pool holds a connection now
    assert fleet.terminate("bearer-grpc", a.proc.pid), "no store session found"
    token = fleet.issue("a")  # pre-ping finds the dead connection and opens a new one
    fleet.at("a").RevokeToken(pb.RevokeTokenRequest(token=token), timeout=10)
    wait_until(lambda: fleet.verify("b", token).reason == "TOKEN_REVOKED", timeout=FAN_OUT_DEADLINE)
