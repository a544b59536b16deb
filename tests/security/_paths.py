"""The four paths a token is judged on, and what "refused" means on each."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from bearer_grpc.core.errors import AuthError
from bearer_grpc.testing import Answer, LoopThread, path
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import ECHO_AUDIENCE, ECHO_SCOPE, Protected
from tests.security.conftest import Deployment

PATHS = ("verify_rpc_sync", "verify_rpc_aio", "interceptor_sync", "interceptor_aio")
TIMEOUT = 10
REFUSAL_REASONS = frozenset({"TOKEN_MALFORMED", "TOKEN_INVALID", "TOKEN_EXPIRED"})
METADATA_BUDGET = 8000
"""Authorization values longer than this may be cut off by gRPC's own metadata limit
(8 KiB soft limit): those calls must fail, not necessarily with UNAUTHENTICATED."""
MESSAGE_BUDGET = 60_000
"""The TokenService takes requests of at most 64 KiB: a longer VerifyToken request is
refused by gRPC itself with RESOURCE_EXHAUSTED before any token code runs."""


def sendable(token: str) -> bool:
    """Whether gRPC Python will send ``Bearer <token>`` as an ASCII metadata value."""
    return all(0x20 <= ord(c) <= 0x7E for c in token)


def verify_request(token: str) -> pb.VerifyTokenRequest:
    """VerifyToken for the protected audience, needing the protected scope."""
    return pb.VerifyTokenRequest(token=token, audience=ECHO_AUDIENCE, required_scopes=[ECHO_SCOPE])


def verify_rpc(deployment: Deployment, loop: LoopThread, token: str, flavour: str) -> Any:
    """VerifyToken over a sync or a ``grpc.aio`` client."""
    if flavour == "sync":
        return deployment.stub.VerifyToken(verify_request(token), timeout=TIMEOUT)
    stub = pb_grpc.TokenServiceStub(deployment.aio_channel)

    async def call() -> Any:
        return await stub.VerifyToken(verify_request(token), timeout=TIMEOUT)

    return loop.run(call())


def call_protected(server: Protected, token: str) -> Answer:
    """Echo's Unary with ``authorization: Bearer <token>``."""
    metadata = (("authorization", f"Bearer {token}"),)
    response: bytes = server.channel.unary_unary(path("Unary"))(
        b"hi", metadata=metadata, timeout=TIMEOUT
    )
    return Answer.parse(response)


def verify_directly(server: Protected, loop: LoopThread, token: str) -> Any:
    """The protected server's own verifier, for values gRPC cannot carry."""
    if server.flavour == "sync":
        return server.verifier.verify(token)
    return loop.run(server.verifier.verify(token))


def assert_accepted(
    deployment: Deployment, loop: LoopThread, token: str, where: str, subject: str
) -> None:
    """The control: ``token`` of ``subject`` passes on path ``where``."""
    if where.startswith("verify_rpc"):
        response = verify_rpc(deployment, loop, token, where.rsplit("_", 1)[1])
        assert response.active, response.reason
        assert response.subject == subject
        return
    server = deployment.servers[where.rsplit("_", 1)[1]]
    answer = call_protected(server, token)
    assert (answer.subject, answer.scopes) == (subject, (ECHO_SCOPE,))


def assert_refused(deployment: Deployment, loop: LoopThread, token: str, where: str) -> None:
    """``token`` is refused on path ``where`` (see the module doc of conftest)."""
    if where.startswith("verify_rpc") and len(token) > MESSAGE_BUDGET:
        with pytest.raises(grpc.RpcError) as too_big:
            verify_rpc(deployment, loop, token, where.rsplit("_", 1)[1])
        assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        return
    if where.startswith("verify_rpc"):
        response = verify_rpc(deployment, loop, token, where.rsplit("_", 1)[1])
        assert not response.active, "VerifyToken accepted a hostile token"
        assert response.reason in REFUSAL_REASONS, response.reason
        assert (response.subject, response.token_id, response.scopes) == ("", "", [])
        return
    server = deployment.servers[where.rsplit("_", 1)[1]]
    if not sendable(token):
        with pytest.raises(AuthError):
            verify_directly(server, loop, token)
        return
    before = server.echo.calls
    with pytest.raises(grpc.RpcError) as refused:
        call_protected(server, token)
    code = refused.value.code()
    if len(token) + 7 > METADATA_BUDGET:
        assert code != grpc.StatusCode.OK
    else:
        assert code == grpc.StatusCode.UNAUTHENTICATED, refused.value
    assert server.echo.calls == before, "the handler ran for a hostile token"
