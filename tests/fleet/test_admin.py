"""The AdminService on a fleet: a subject revoked through replica A's AdminService is
refused by a local verifier following replica C within a second, however many such
revocations run at once.

The replicas poll the store only every 30 s, so the revocation reaches C through
``LISTEN/NOTIFY`` and the verifier through C's ``WatchRevocations``. The latency is
measured from the acknowledgement of each RevokeSubject call to the first refusal by
the verifier, over concurrent trials; the maximum is printed (``pytest -s`` shows it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from bearer_grpc import Backoff, Verifier
from bearer_grpc.core.errors import TokenRevoked
from bearer_grpc.service.admin import Admin
from bearer_grpc.v1 import admin_service_pb2 as apb
from bearer_grpc.v1 import admin_service_pb2_grpc as admin_grpc
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.fleet.conftest import AUDIENCE, SCOPES, Fleet
from tests.harness import wait_until

pytestmark = [pytest.mark.process, pytest.mark.postgres, pytest.mark.slow]

DEADLINE = 1.0
"""Longest a subject revoked through one replica may take to be refused at another."""
TRIALS = 8
"""Subjects revoked at once, each through its own call."""


@pytest.fixture
def verifier_at_c(fleet: Fleet) -> Iterator[Verifier]:
    """A local verifier following replica ``c``."""
    verifier = Verifier.from_token_service(
        fleet.replicas["c"].target, audience=AUDIENCE, backoff=Backoff(0.05, 0.5)
    )
    try:
        yield verifier
    finally:
        verifier.close()


def _admin_stub_at_a(fleet: Fleet) -> tuple[admin_grpc.AdminServiceStub, tuple[tuple[str, str]]]:
    with fleet.store() as store:
        admin = Admin(store).add_client(
            "fleet-admin", scopes=["bearer-grpc:admin"], audiences=["bearer-grpc"]
        )
    request = pb.IssueTokenRequest(
        client_credentials=pb.ClientCredentialsGrant(
            client_id=admin.client_id, client_secret=admin.client_secret
        )
    )
    token = fleet.at("a").IssueToken(request, timeout=10).access_token
    channel = grpc.insecure_channel(fleet.replicas["a"].target)
    fleet.channels.append(channel)
    return admin_grpc.AdminServiceStub(channel), (("authorization", f"Bearer {token}"),)


def _refused(verifier: Verifier, token: str) -> bool:
    try:
        verifier.verify(token)
    except TokenRevoked:
        return True
    return False


def test_a_subject_revoked_through_a_is_refused_by_a_verifier_at_c_within_a_second(
    fleet: Fleet, verifier_at_c: Verifier
) -> None:
    stub, metadata = _admin_stub_at_a(fleet)
    victims: dict[str, str] = {}
    with fleet.store() as store:
        admin = Admin(store)
        for n in range(TRIALS):
            client = admin.add_client(f"victim-{n}", scopes=list(SCOPES), audiences=[AUDIENCE])
            request = pb.IssueTokenRequest(
                client_credentials=pb.ClientCredentialsGrant(
                    client_id=client.client_id, client_secret=client.client_secret
                )
            )
            victims[client.client_id] = fleet.at("b").IssueToken(request, timeout=10).access_token
    for name, token in victims.items():
        assert verifier_at_c.verify(token).subject == name

    def trial(name: str) -> tuple[float, float]:
        sent = time.monotonic()
        stub.RevokeSubject(apb.RevokeSubjectRequest(name=name), metadata=metadata, timeout=10)
        acknowledged = time.monotonic()
        token = victims[name]
        wait_until(lambda: _refused(verifier_at_c, token), timeout=DEADLINE, interval=0.002)
        refused = time.monotonic()
        return refused - acknowledged, refused - sent

    with ThreadPoolExecutor(TRIALS) as pool:
        latencies = list(pool.map(trial, victims))
    worst = max(after_ack for after_ack, _ in latencies)
    worst_from_call = max(after_call for _, after_call in latencies)
    print(
        f"subject revoked through replica a, refused by a verifier at c, over {TRIALS} "
        f"concurrent trials: max {worst * 1000:.1f} ms after the acknowledgement, "
        f"max {worst_from_call * 1000:.1f} ms after the call was sent"
    )
    assert worst < DEADLINE
    events = stub.ListAuditEvents(apb.ListAuditEventsRequest(), metadata=metadata, timeout=10)
    revoked = {e.target for e in events.events if e.action == "subject.revoke"}
    assert revoked == set(victims)
    assert {e.actor for e in events.events if e.action == "subject.revoke"} == {"fleet-admin"}
