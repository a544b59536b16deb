"""VerifyToken reuses the answer built for a cached principal, never the decision."""

from __future__ import annotations

from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import RunningService, verify


def test_reused_answer_is_identical_and_revocation_still_refuses(
    service: RunningService,
) -> None:
    issued = service.issue(service.add_client(scopes=("orders.read",)))
    stub = service.stub()
    first = verify(stub, issued.access_token)
    again = verify(stub, issued.access_token)
    assert first.active and again == first
    assert service.authority.cache.hits >= 1  # the second answer came from the cache
    assert verify(stub, issued.access_token, audience="billing").reason == "TOKEN_INVALID"
    denied = verify(stub, issued.access_token, required_scopes=["orders.write"])
    assert denied.reason == "INSUFFICIENT_SCOPE"
    stub.RevokeToken(pb.RevokeTokenRequest(token=issued.access_token), timeout=10)
    revoked = verify(stub, issued.access_token)
    assert (revoked.active, revoked.reason, revoked.subject) == (False, "TOKEN_REVOKED", "")
