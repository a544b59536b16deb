"""Real faults under a running fleet: a replica killed with SIGKILL under load, and the
network path to PostgreSQL cut and restored (a proxy in between; the PostgreSQL server
itself is never stopped)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from sqlalchemy.engine import make_url

from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.fleet.conftest import Fleet, new_fleet
from tests.harness import (
    NOT_SERVING,
    SERVING,
    ServeProcess,
    health_status,
    start_server,
    wait_until,
)
from tests.proxy import Proxy, proxy

pytestmark = [pytest.mark.process, pytest.mark.postgres]


def _outcome(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _client_request(fleet: Fleet) -> pb.IssueTokenRequest:
    assert fleet.client is not None
    return pb.IssueTokenRequest(
        client_credentials=pb.ClientCredentialsGrant(
            client_id=fleet.client.client_id, client_secret=fleet.client.client_secret
        )
    )


class Load:
    """Issues and revokes tokens in a loop through one channel; remembers what was acked."""

    def __init__(self, fleet: Fleet, stub: pb_grpc.TokenServiceStub) -> None:
        self._fleet = fleet
        self._stub = stub
        self.revoked: list[str] = []
        self.failures: Counter[grpc.StatusCode] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        request = _client_request(self._fleet)
        while not self._stop.is_set():
            try:
                token = self._stub.IssueToken(request, timeout=5, wait_for_ready=True)
                self._stub.RevokeToken(
                    pb.RevokeTokenRequest(token=token.access_token),
                    timeout=5,
                    wait_for_ready=True,
                )
            except grpc.RpcError as err:
                self.failures[err.code()] += 1
                continue
            self.revoked.append(token.access_token)

    @contextmanager
    def running(self) -> Iterator[Load]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(15)


def test_kill_9_of_a_replica_under_load(tmp_path: Path) -> None:
    """Clients of the killed replica reach another; nothing it acknowledged is lost."""
    with new_fleet(tmp_path, "x", "y") as fleet:
        x, y = fleet.replicas["x"], fleet.replicas["y"]
        # Both replicas as targets of one channel: pick_first uses x while it lives.
        channel = grpc.insecure_channel(f"ipv4:127.0.0.1:{x.port},127.0.0.1:{y.port}")
        fleet.channels.append(channel)
        load = Load(fleet, pb_grpc.TokenServiceStub(channel))
        with load.running():
            wait_until(lambda: len(load.revoked) >= 10, timeout=20)
            x.proc.kill()
            x.proc.wait(10)
            at_kill = len(load.revoked)
            wait_until(lambda: len(load.revoked) >= at_kill + 10, timeout=20)
        assert set(load.failures) <= {grpc.StatusCode.UNAVAILABLE}, load.failures
        assert health_status(y.target) == SERVING
        for token in load.revoked:  # every acknowledged revocation, including x's
            assert fleet.verify("y", token).reason == "TOKEN_REVOKED"


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[Fleet, Proxy, ServeProcess]]:
    """A fleet whose one replica reaches PostgreSQL through a cuttable proxy."""
    with new_fleet(tmp_path) as fleet:
        url = make_url(fleet.url)
        with proxy(f"{url.host or '127.0.0.1'}:{url.port or 5432}") as link:
            via_proxy = url.set(port=link.port).render_as_string(hide_password=False)
            server = start_server(
                fleet.cwd,
                "--store",
                via_proxy,
                "--grace",
                "1",
                "--sync-interval",
                "0.2",
                env=fleet.env,
            )
            fleet.replicas["r"] = server
            yield fleet, link, server


def test_postgres_unreachable_is_unavailable_and_not_serving_then_recovers(
    proxied: tuple[Fleet, Proxy, ServeProcess],
) -> None:
    fleet, link, server = proxied
    stub = fleet.at("r")
    revoked = fleet.issue("r")
    stub.RevokeToken(pb.RevokeTokenRequest(token=revoked), timeout=10)  # acknowledged
    kept = fleet.issue("r")

    link.cut()
    started = time.monotonic()
    assert _outcome(lambda: stub.IssueToken(_client_request(fleet), timeout=20)) == (
        grpc.StatusCode.UNAVAILABLE
    )
    with pytest.raises(grpc.RpcError) as revoke:
        stub.RevokeToken(pb.RevokeTokenRequest(token=kept), timeout=20)
    assert revoke.value.code() == grpc.StatusCode.UNAVAILABLE
    details = revoke.value.details() or ""
    assert "Traceback" not in details and "psycopg" not in details and "5432" not in details
    assert time.monotonic() - started < 15  # answered, not hung until the deadline
    wait_until(lambda: health_status(server.target) == NOT_SERVING, timeout=10)
    # What needs no store still works from memory, with everything acknowledged so far.
    assert fleet.verify("r", revoked).reason == "TOKEN_REVOKED"
    assert fleet.verify("r", kept).active

    link.heal()
    wait_until(lambda: health_status(server.target) == SERVING, timeout=15)
    assert fleet.issue("r")
    stub.RevokeToken(pb.RevokeTokenRequest(token=kept), timeout=10)
    assert fleet.verify("r", kept).reason == "TOKEN_REVOKED"
    with fleet.store() as store:  # the acknowledged revocation survived, once
        jtis = [r.jti for r in store.revocations_after(0)]
    assert len(jtis) == len(set(jtis)) == 2
    assert "Traceback" not in server.stderr()
