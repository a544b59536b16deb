"""bearer_grpc.testing: the kit works end to end, sync and aio, with real servers."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import grpc
import pytest

import bearer_grpc
import bearer_grpc.aio
import bearer_grpc.testing
from bearer_grpc.core.wire import ERROR_DOMAIN
from bearer_grpc.testing import (
    KINDS,
    METHODS,
    Answer,
    Echo,
    FrozenClock,
    Kind,
    LoopThread,
    TestIssuer,
    assert_refused,
    bearer,
    call,
    call_aio,
    error_info,
    path,
    reason_of,
    serve,
    serve_aio,
)
from bearer_grpc.testing.errors import DOMAIN

METHOD = "/kit.v1.Who/Am"


def _who(request: bytes, context: grpc.ServicerContext) -> bytes:
    return bearer_grpc.current_principal().subject.encode()


async def _who_async(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return bearer_grpc.current_principal().subject.encode()


def _handlers(behaviour: object) -> list[grpc.GenericRpcHandler]:
    return [
        grpc.method_handlers_generic_handler(
            "kit.v1.Who",
            {"Am": grpc.unary_unary_rpc_method_handler(behaviour)},  # type: ignore[arg-type]
        )
    ]


def test_frozen_clock_moves_only_when_told() -> None:
    clock = FrozenClock(100.0)
    assert clock() == 100.0
    clock.advance(5)
    assert clock() == 105.0


def test_issuer_tokens_verify_until_the_frozen_clock_passes_expiry() -> None:
    clock = FrozenClock()
    issuer = TestIssuer(clock=clock)
    verifier = issuer.verifier(audience="orders", leeway=0)
    token = issuer.token(subject="svc", scopes=["orders.read"], audience="orders", lifetime=60)
    assert verifier.verify(token).scopes == {"orders.read"}
    clock.advance(60)
    with pytest.raises(bearer_grpc.TokenExpired):
        verifier.verify(issuer.token(audience="orders", lifetime=0))


def test_issuer_backdates_tokens_by_age() -> None:
    issuer = TestIssuer(clock=FrozenClock())
    verifier = issuer.verifier(leeway=0)
    assert verifier.verify(issuer.token(lifetime=60, age=59)).subject == "test-client"
    with pytest.raises(bearer_grpc.TokenExpired):
        verifier.verify(issuer.token(lifetime=60, age=60))


def test_impostor_claims_the_kid_and_fails_the_signature_check() -> None:
    issuer = TestIssuer()
    impostor = issuer.impostor()
    assert impostor.key.kid == issuer.key.kid
    with pytest.raises(bearer_grpc.TokenInvalid):
        issuer.verifier().verify(impostor.token())


def test_sync_server_on_a_free_port_sees_the_caller() -> None:
    issuer = TestIssuer()
    interceptor = bearer_grpc.BearerServerInterceptor(issuer.verifier(audience="kit"))
    with (
        serve(_handlers(_who), interceptors=[interceptor]) as target,
        grpc.insecure_channel(target) as channel,
    ):
        who = channel.unary_unary(METHOD)
        token = issuer.token(subject="alice", audience="kit")
        assert who(b"", metadata=bearer(token), timeout=10) == b"alice"
        with pytest.raises(grpc.RpcError) as refused:
            who(b"", timeout=10)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_aio_server_on_a_free_port_sees_the_caller() -> None:
    issuer = TestIssuer()

    async def scenario() -> bytes:
        interceptor = bearer_grpc.aio.BearerServerInterceptor(issuer.aio_verifier(audience="kit"))
        async with serve_aio(_handlers(_who_async), interceptors=[interceptor]) as target:
            channel = grpc.aio.insecure_channel(target)
            token = issuer.token(subject="bob", audience="kit")
            reply: bytes = await channel.unary_unary(METHOD)(
                b"", metadata=bearer(token), timeout=10
            )
            await channel.close()
            return reply

    assert asyncio.run(scenario()) == b"bob"


# -- the Echo service ---------------------------------------------------------------------

ISSUER = TestIssuer()
EXPECTED_REQUESTS: dict[Kind, list[tuple[bytes, ...]]] = {
    "unary_unary": [(b"a",)],
    "unary_stream": [(b"a",), (b"a",)],
    "stream_unary": [(b"a", b"b")],
    "stream_stream": [(b"a",), (b"b",)],
}


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    """An event loop on a thread, for the aio servers of these sync tests."""
    with LoopThread() as running:
        yield running


@pytest.fixture(scope="module", params=["sync", "aio"])
def protected(request: pytest.FixtureRequest, loop: LoopThread) -> Iterator[tuple[Echo, str]]:
    """An Echo behind bearer_grpc's interceptor of each flavour, with a public ``Hello``."""
    echo = Echo({"Hello": "unary_unary"})
    policy = bearer_grpc.Policy(public=[path("Hello")])
    if request.param == "sync":
        verifier = ISSUER.verifier()
        interceptor = bearer_grpc.BearerServerInterceptor(verifier, policy)
        with serve([echo.handler()], interceptors=[interceptor]) as target:
            yield echo, target
        return
    aio_interceptor = bearer_grpc.aio.BearerServerInterceptor(ISSUER.aio_verifier(), policy)
    with loop.context(serve_aio([echo.aio_handler()], interceptors=[aio_interceptor])) as target:
        yield echo, target


@pytest.mark.parametrize("kind", KINDS)
def test_echo_answers_the_bound_principal_and_the_authorization(
    protected: tuple[Echo, str], kind: Kind
) -> None:
    echo, target = protected
    echo.reset()
    token = ISSUER.token(subject="carol", scopes=["b", "a"], client_id="carol-app")
    with grpc.insecure_channel(target) as channel:
        answers = call(channel, kind, metadata=[*bearer(token), ("x-trace-bin", b"\x00\x01")])
    assert [answer.requests for answer in answers] == EXPECTED_REQUESTS[kind]
    for answer in answers:
        assert (answer.subject, answer.client_id, answer.scopes) == (
            "carol",
            "carol-app",
            ("a", "b"),
        )
        assert answer.issuer == ISSUER.issuer
        assert answer.authorization == (f"Bearer {token}",)
        assert ("x-trace-bin", "0001") in answer.metadata
    assert echo.calls == 1


def test_echo_answers_no_principal_on_a_public_method(protected: tuple[Echo, str]) -> None:
    echo, target = protected
    echo.reset()
    with grpc.insecure_channel(target) as channel:
        (answer,) = call(channel, "unary_unary", method="Hello")
    assert (answer.subject, answer.issuer, answer.client_id) == (None, None, None)
    assert (answer.scopes, answer.authorization) == ((), ())
    assert echo.calls == 1


def test_echo_counts_no_call_the_interceptor_refused(protected: tuple[Echo, str]) -> None:
    echo, target = protected
    echo.reset()
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as refused:
        call(channel, "stream_stream", metadata=bearer(ISSUER.token(lifetime=60, age=3600)))
    info = assert_refused(refused.value, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")
    assert info.domain == "bearer-grpc"
    assert reason_of(refused.value) == "TOKEN_EXPIRED"
    assert echo.calls == 0


def test_echo_runs_between_its_two_server_stream_responses(protected: tuple[Echo, str]) -> None:
    echo, target = protected
    echo.reset()
    ran: list[int] = []
    echo.between = lambda: ran.append(echo.calls)
    with grpc.insecure_channel(target) as channel:
        responses = channel.unary_stream(path("ServerStream"))(
            b"x", metadata=bearer(ISSUER.token()), timeout=10
        )
        assert len(list(responses)) == 2
    assert ran == [1]


@pytest.mark.parametrize("kind", KINDS)
def test_echo_refuse_hook_ends_the_call_after_reading_the_requests(kind: Kind) -> None:
    seen: list[str | bytes] = []

    def refuse(metadata: object) -> grpc.Status | None:
        seen.extend(value for key, value in metadata if key == "x-id")  # type: ignore[attr-defined]
        return _Status(grpc.StatusCode.ABORTED, "no", ())

    echo = Echo(refuse=refuse)

    async def scenario() -> grpc.aio.AioRpcError:
        async with (
            serve_aio([echo.aio_handler()]) as target,
            grpc.aio.insecure_channel(target) as channel,
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call_aio(channel, kind, metadata=(("x-id", "1"),))
        return refused.value

    error = asyncio.run(scenario())
    assert (error.code(), error.details()) == (grpc.StatusCode.ABORTED, "no")
    assert error_info(error) is None and reason_of(error) is None
    assert seen == ["1"] and echo.calls == 1


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple[()]) -> None:
        self.code, self.details, self.trailing_metadata = code, details, trailing


@pytest.mark.parametrize("kind", KINDS)
def test_plain_echo_returns_the_requests(kind: Kind) -> None:
    echo = Echo(plain=True)
    with serve([echo.handler()]) as target, grpc.insecure_channel(target) as channel:
        stub = getattr(channel, kind)(path(METHODS[kind]))
        if kind == "unary_unary":
            assert stub(b"ab", timeout=10) == b"ab"
        elif kind == "unary_stream":
            assert list(stub(b"ab", timeout=10)) == [b"ab", b"ab"]
        elif kind == "stream_unary":
            assert stub(iter([b"a", b"b"]), timeout=10) == b"ab"
        else:
            assert list(stub(iter([b"a", b"b"]), timeout=10)) == [b"a", b"b"]
    assert echo.calls == 1


def test_answer_round_trips_and_refuses_other_bytes() -> None:
    answer = Answer("s", "i", "c", ("x",), (("authorization", "Bearer t"),), (b"\x00\xff",))
    assert Answer.parse(answer.encode()) == answer
    assert answer.authorization == ("Bearer t",)
    for junk in (b"[]", b'{"subject": 1}', b"hello"):
        with pytest.raises(ValueError):
            Answer.parse(junk)


def test_assert_refused_names_what_differs() -> None:
    issuer = TestIssuer()
    echo = Echo()
    interceptor = bearer_grpc.BearerServerInterceptor(issuer.verifier())
    with (
        serve([echo.handler()], interceptors=[interceptor]) as target,
        grpc.insecure_channel(target) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        call(channel, "unary_unary")
    assert_refused(refused.value, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")
    with pytest.raises(AssertionError, match="PERMISSION_DENIED"):
        assert_refused(refused.value, grpc.StatusCode.PERMISSION_DENIED, "TOKEN_MISSING")
    with pytest.raises(AssertionError, match="TOKEN_MISSING"):
        assert_refused(refused.value, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")


@pytest.mark.parametrize("kind", KINDS)
def test_call_takes_a_full_method_name(kind: Kind) -> None:
    """A full name reaches the Echo as its own name does, and an unknown one is refused
    for what it is: the way to test a server's answer to methods it does not have."""
    issuer = TestIssuer()
    interceptor = bearer_grpc.BearerServerInterceptor(issuer.verifier())
    with (
        serve([Echo().handler()], interceptors=[interceptor]) as target,
        grpc.insecure_channel(target) as channel,
    ):
        token = bearer(issuer.token())
        full = call(channel, kind, metadata=token, method=path(METHODS[kind]))
        assert full == call(channel, kind, metadata=token)
        with pytest.raises(grpc.RpcError) as unknown:
            call(channel, kind, metadata=token, method="/kit.v1.Nope/Method")
        assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.RpcError) as refused:
            call(channel, kind, method="/kit.v1.Nope/Method")
        assert_refused(refused.value, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")


def test_error_domain_is_the_wire_contract() -> None:
    assert DOMAIN == ERROR_DOMAIN == "bearer-grpc"


def test_loop_thread_context_exits_on_the_loop_even_on_error() -> None:
    steps: list[str] = []

    class Manager:
        async def __aenter__(self) -> str:
            steps.append(f"enter {asyncio.get_running_loop() is running.loop}")
            return "value"

        async def __aexit__(self, *exc: object) -> bool:
            steps.append(f"exit {exc[0].__name__ if exc[0] else None}")  # type: ignore[attr-defined]
            return False

    with LoopThread() as running:
        with running.context(Manager()) as value:
            assert value == "value"
        with pytest.raises(KeyError), running.context(Manager()):
            raise KeyError("x")
    assert running.loop.is_closed()
    assert steps == ["enter True", "exit None", "enter True", "exit KeyError"]


def test_every_public_name_is_documented() -> None:
    module = bearer_grpc.testing
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__doc__, f"bearer_grpc.testing.{name} has no docstring"
