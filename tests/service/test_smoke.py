"""A first end-to-end check: issue, verify, revoke against a real server."""

from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import RunningService


def test_issue_verify_revoke(shared_service: RunningService) -> None:
    client = shared_service.add_client()
    issued = shared_service.issue(client, scopes=["orders.read"])
    stub = shared_service.stub()
    verified = stub.VerifyToken(pb.VerifyTokenRequest(token=issued.access_token, audience="orders"))
    assert verified.active and verified.subject == client.client_id
    stub.RevokeToken(pb.RevokeTokenRequest(token=issued.access_token))
    verified = stub.VerifyToken(pb.VerifyTokenRequest(token=issued.access_token, audience="orders"))
    assert not verified.active and verified.reason == "TOKEN_REVOKED"
