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
from bearer_grpc.testing import FrozenClock
from bearer_grpc.v1 import token_service_pb2
from tests.harness import LoopThread
from tests.interceptors.echo import SERVICE, Calls, path, serve_aio, serve_sync
from tests.interceptors.support import (
    ADMIN_SCOPE,
    AUDIENCE,
    ISSUER,
    SCOPE,
    Server,
    Tokens,
    assert_refused,
    bearer,
    challenge,
    refusal,
)


@pytest.mark.parametrize("metadata", [(), (("authorization", "Bearer not checked!"),)])
def test_public_method_needs_no_token_and_binds_nobody(
    server: Server, metadata: tuple[tuple[str, str], ...]
) -> None:
    public = server.channel.unary_unary(path("Public"))
    assert public(b"hi", metadata=metadata, timeout=10) == b"public:nobody"
    assert server.calls.count == 1


def test_public_method_binds_nobody_even_with_a_valid_token(server: Server, tokens: Tokens) -> None:
    public = server.channel.unary_unary(path("Public"))
    assert public(b"hi", metadata=bearer(tokens.issue()), timeout=10) == b"public:nobody"


def test_health_is_public_by_default(server: Server) -> None:
    health = health_pb2_grpc.HealthStub(server.channel)
    response = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("kind", ["unary_unary", "stream_stream"])
def test_unknown_method_is_unauthenticated_without_a_token(server: Server, kind: str) -> None:
    method = path("DoesNotExist")
    if kind == "unary_unary":
        error = refusal(lambda: server.channel.unary_unary(method)(b"hi", timeout=10))
    else:
        error = refusal(
            lambda: list(server.channel.stream_stream(method)(iter([b"a"]), timeout=10))
        )
    assert_refused(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING", "Bearer")


def test_unknown_method_is_unauthenticated_with_a_bad_token(server: Server, tokens: Tokens) -> None:
    unknown = server.channel.unary_unary(path("DoesNotExist"))
    error = refusal(lambda: unknown(b"hi", metadata=bearer(tokens.forged()), timeout=10))
    assert_refused(
        error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID", challenge("invalid token")
    )


def test_unknown_method_is_unimplemented_with_a_valid_token(server: Server, tokens: Tokens) -> None:
    token = tokens.issue()
    unknown = server.channel.unary_unary(path("DoesNotExist"))
    # First call: cache miss, verified in the handler; second: cache hit, grpc's own answer.
    for _ in range(2):
        error = refusal(lambda: unknown(b"hi", metadata=bearer(token), timeout=10))
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    unknown_service = server.channel.unary_unary("/test.v1.Nope/Method")
    error = refusal(lambda: unknown_service(b"hi", metadata=bearer(token), timeout=10))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unknown_method_of_a_public_service_is_unimplemented(server: Server) -> None:
    unknown = server.channel.unary_unary("/grpc.health.v1.Health/DoesNotExist")
    assert refusal(lambda: unknown(b"hi", timeout=10)).code() == grpc.StatusCode.UNIMPLEMENTED


def test_most_specific_rule_wins(server: Server, tokens: Tokens) -> None:
    admin = server.channel.unary_unary(path("Admin"))
    error = refusal(lambda: admin(b"hi", metadata=bearer(tokens.issue()), timeout=10))
    assert_refused(
        error,
        grpc.StatusCode.PERMISSION_DENIED,
        "INSUFFICIENT_SCOPE",
        f'Bearer error="insufficient_scope", scope="{ADMIN_SCOPE}"',
        required_scopes=ADMIN_SCOPE,
    )
    token = tokens.issue(scopes=[ADMIN_SCOPE])
    assert admin(b"hi", metadata=bearer(token), timeout=10) == b"alice|echo.admin"


def _strict_policy() -> Policy:
    return Policy(public=[path("Public")], scopes={path("Unary"): [SCOPE]}, strict=True)


@pytest.fixture(params=["sync", "aio"])
def strict_server(
    request: pytest.FixtureRequest, tokens: Tokens, clock: FrozenClock, loop: LoopThread
) -> Iterator[tuple[grpc.Channel, Calls]]:
    """A server of each flavour whose strict policy covers only Unary and Public."""
    calls = Calls()
    if request.param == "sync":
        verifier = bearer_grpc.Verifier.from_jwks(
            tokens.jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock
        )
        serving = serve_sync(bearer_grpc.BearerServerInterceptor(verifier, _strict_policy()), calls)
    else:
        aio_verifier = bearer_grpc.aio.Verifier.from_jwks(
            tokens.jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock
        )
        interceptor = bearer_grpc.aio.BearerServerInterceptor(aio_verifier, _strict_policy())
        serving = serve_aio(loop, interceptor, calls)
    with serving as endpoints, grpc.insecure_channel(endpoints.target) as channel:
        yield channel, calls


def test_strict_policy_refuses_an_uncovered_method(
    strict_server: tuple[grpc.Channel, Calls], tokens: Tokens
) -> None:
    channel, calls = strict_server
    token = tokens.issue()
    assert channel.unary_unary(path("Unary"))(b"hi", metadata=bearer(token), timeout=10)

    stream = channel.unary_stream(path("ServerStream"))
    error = refusal(lambda: list(stream(b"hi", metadata=bearer(token), timeout=10)))

    assert error.code() == grpc.StatusCode.UNKNOWN
    assert calls.count == 1


@pytest.mark.parametrize(
    ("interceptor_type", "verifier_type"),
    [
        (bearer_grpc.BearerServerInterceptor, bearer_grpc.Verifier),
        (bearer_grpc.aio.BearerServerInterceptor, bearer_grpc.aio.Verifier),
    ],
    ids=["sync", "aio"],
)
def test_check_services_lists_uncovered_methods(
    interceptor_type: Any, verifier_type: Any, tokens: Tokens
) -> None:
    verifier = verifier_type.from_jwks(tokens.jwks, issuer=ISSUER, audience=AUDIENCE)
    token_service = token_service_pb2.DESCRIPTOR.services_by_name["TokenService"].full_name
    strict = interceptor_type(verifier, Policy(scopes={f"/{SERVICE}/*": [SCOPE]}, strict=True))

    strict.check_services(["grpc.health.v1.Health"])  # public by default
    with pytest.raises(PolicyError) as refused:
        strict.check_services([token_service, "grpc.health.v1.Health"])
    assert "/bearer_grpc.v1.TokenService/IssueToken" in str(refused.value)
    assert "Health" not in str(refused.value)
    with pytest.raises(PolicyError, match="unknown service"):
        strict.check_services(["no.such.Service"])

    lenient = interceptor_type(verifier, Policy())
    lenient.check_services([token_service])
