"""What the policy decides on the wire: public methods, health, unknown methods, scopes, strict."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc import Policy, PolicyError
from bearer_grpc.testing import SERVICE, LoopThread, TestIssuer, bearer, path
from bearer_grpc.v1 import token_service_pb2
from tests.harness import (
    ECHO_ADMIN_SCOPE,
    ECHO_AUDIENCE,
    ECHO_SCOPE,
    Protected,
    assert_challenged,
    challenge,
    protect,
    refusal,
)
from tests.interceptors.support import ALICE, NOBODY, alice, who


@pytest.mark.parametrize("metadata", [(), (("authorization", "Bearer not checked!"),)])
def test_public_method_needs_no_token_and_binds_nobody(
    server: Protected, metadata: tuple[tuple[str, str], ...]
) -> None:
    public = server.channel.unary_unary(path("Public"))
    assert who(public(b"hi", metadata=metadata, timeout=10)) == NOBODY
    assert server.echo.calls == 1


def test_public_method_binds_nobody_even_with_a_valid_token(
    server: Protected, issuer: TestIssuer
) -> None:
    public = server.channel.unary_unary(path("Public"))
    assert who(public(b"hi", metadata=bearer(alice(issuer)), timeout=10)) == NOBODY


def test_health_is_public_by_default(server: Protected) -> None:
    health = health_pb2_grpc.HealthStub(server.channel)
    response = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("kind", ["unary_unary", "stream_stream"])
def test_unknown_method_is_unauthenticated_without_a_token(server: Protected, kind: str) -> None:
    method = path("DoesNotExist")
    if kind == "unary_unary":
        error = refusal(lambda: server.channel.unary_unary(method)(b"hi", timeout=10))
    else:
        error = refusal(
            lambda: list(server.channel.stream_stream(method)(iter([b"a"]), timeout=10))
        )
    assert_challenged(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING", "Bearer")


def test_unknown_method_is_unauthenticated_with_a_bad_token(
    server: Protected, issuer: TestIssuer
) -> None:
    unknown = server.channel.unary_unary(path("DoesNotExist"))
    forged = alice(issuer.impostor())
    error = refusal(lambda: unknown(b"hi", metadata=bearer(forged), timeout=10))
    assert_challenged(
        error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID", challenge("invalid token")
    )


def test_unknown_method_is_unimplemented_with_a_valid_token(
    server: Protected, issuer: TestIssuer
) -> None:
    token = alice(issuer)
    unknown = server.channel.unary_unary(path("DoesNotExist"))
    # First call: cache miss, verified in the handler; second: cache hit, grpc's own answer.
    for _ in range(2):
        error = refusal(lambda: unknown(b"hi", metadata=bearer(token), timeout=10))
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    unknown_service = server.channel.unary_unary("/test.v1.Nope/Method")
    error = refusal(lambda: unknown_service(b"hi", metadata=bearer(token), timeout=10))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unknown_method_of_a_public_service_is_unimplemented(server: Protected) -> None:
    unknown = server.channel.unary_unary("/grpc.health.v1.Health/DoesNotExist")
    assert refusal(lambda: unknown(b"hi", timeout=10)).code() == grpc.StatusCode.UNIMPLEMENTED


def test_most_specific_rule_wins(server: Protected, issuer: TestIssuer) -> None:
    admin = server.channel.unary_unary(path("Admin"))
    error = refusal(lambda: admin(b"hi", metadata=bearer(alice(issuer)), timeout=10))
    assert_challenged(
        error,
        grpc.StatusCode.PERMISSION_DENIED,
        "INSUFFICIENT_SCOPE",
        f'Bearer error="insufficient_scope", scope="{ECHO_ADMIN_SCOPE}"',
        required_scopes=ECHO_ADMIN_SCOPE,
    )
    token = alice(issuer, scopes=[ECHO_ADMIN_SCOPE])
    assert who(admin(b"hi", metadata=bearer(token), timeout=10)) == ("alice", (ECHO_ADMIN_SCOPE,))


def _strict_policy() -> Policy:
    return Policy(public=[path("Public")], scopes={path("Unary"): [ECHO_SCOPE]}, strict=True)


@pytest.fixture(params=["sync", "aio"])
def strict_server(
    request: pytest.FixtureRequest, issuer: TestIssuer, loop: LoopThread
) -> Iterator[Protected]:
    """A server of each flavour whose strict policy covers only Unary and Public."""
    if request.param == "sync":
        verifier: Any = issuer.verifier(audience=ECHO_AUDIENCE)
    else:
        verifier = issuer.aio_verifier(audience=ECHO_AUDIENCE)
    with protect(request.param, verifier, _strict_policy(), loop=loop) as server:
        yield server


def test_strict_policy_refuses_an_uncovered_method(
    strict_server: Protected, issuer: TestIssuer
) -> None:
    channel = strict_server.channel
    token = alice(issuer)
    unary = channel.unary_unary(path("Unary"))
    assert who(unary(b"hi", metadata=bearer(token), timeout=10)) == ALICE

    stream = channel.unary_stream(path("ServerStream"))
    error = refusal(lambda: list(stream(b"hi", metadata=bearer(token), timeout=10)))

    assert error.code() == grpc.StatusCode.UNKNOWN
    assert strict_server.echo.calls == 1


@pytest.mark.parametrize(
    ("interceptor_type", "verifier_type"),
    [
        (bearer_grpc.BearerServerInterceptor, bearer_grpc.Verifier),
        (bearer_grpc.aio.BearerServerInterceptor, bearer_grpc.aio.Verifier),
    ],
    ids=["sync", "aio"],
)
def test_check_services_lists_uncovered_methods(
    interceptor_type: Any, verifier_type: Any, issuer: TestIssuer
) -> None:
    verifier = verifier_type.from_jwks(issuer.jwks, issuer=issuer.issuer, audience=ECHO_AUDIENCE)
    token_service = token_service_pb2.DESCRIPTOR.services_by_name["TokenService"].full_name
    strict = interceptor_type(verifier, Policy(scopes={f"/{SERVICE}/*": [ECHO_SCOPE]}, strict=True))

    strict.check_services(["grpc.health.v1.Health"])  # public by default
    with pytest.raises(PolicyError) as refused:
        strict.check_services([token_service, "grpc.health.v1.Health"])
    assert "/bearer_grpc.v1.TokenService/IssueToken" in str(refused.value)
    assert "Health" not in str(refused.value)
    with pytest.raises(PolicyError, match="unknown service"):
        strict.check_services(["no.such.Service"])

    lenient = interceptor_type(verifier, Policy())
    lenient.check_services([token_service])
