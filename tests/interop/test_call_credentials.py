"""gRPC's own call credentials against protected servers (sync and asyncio).

``grpc.access_token_call_credentials(token)`` composed onto ``local_channel_credentials``
(port opened with ``local_server_credentials``) and onto ``ssl_channel_credentials`` with
the self-signed root (TLS port): the way many gRPC users send a bearer token without
bearer_grpc on the client. The calls are examples/client.py's and client_aio.py's.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

import bearer_grpc
from bearer_grpc.testing import TestIssuer, error_info, reason_of
from tests.harness import load_example
from tests.interop._support import (
    ALL_SCOPES,
    AUDIENCE,
    TRANSPORTS,
    Ports,
    Tls,
    address,
    channel_credentials,
)

CLIENT = load_example("client")
CLIENT_AIO = load_example("client_aio")
pb = CLIENT.pb
SUBJECT = "interop-client"
DENIED = "INSUFFICIENT_SCOPE"
MISSING = "TOKEN_MISSING"


def _expected(subject: str) -> dict[str, str]:
    return {
        "GetOrder": "order-1: 2 x blue widget (created by shop-admin)",
        "ListOrders": "order-1, order-2, order-3",
        "UploadOrders": f"created order-N, order-N for {subject}",
        "Chat": f"{subject} said 'hello' / {subject} said 'anything new?'",
    }


def _normal(results: dict[str, str]) -> dict[str, str]:
    upload = results.get("UploadOrders", "").split(" for ")
    if len(upload) == 2:  # order ids grow with every upload to the session's servers
        results = {**results, "UploadOrders": f"created order-N, order-N for {upload[1]}"}
    return results


def _call_all(channel: grpc.Channel) -> dict[str, str]:
    stub = CLIENT.pb_grpc.OrdersServiceStub(channel)
    return _normal({name: call(stub) for name, call in CLIENT.CALLS.items()})


Refusal = tuple[grpc.StatusCode, str | None]


def _refusals(channel: grpc.Channel) -> dict[str, Refusal]:
    """Each call's code and bearer_grpc ErrorInfo reason; calls that succeed are left out."""
    stub = CLIENT.pb_grpc.OrdersServiceStub(channel)
    refused: dict[str, Refusal] = {}
    for name, call in CLIENT.CALLS.items():
        try:
            call(stub)
        except grpc.RpcError as error:
            assert isinstance(error, grpc.Call)
            refused[name] = (error.code(), reason_of(error))
    return refused


def _token(issuer: TestIssuer, *scopes: str) -> str:
    return issuer.token(subject=SUBJECT, scopes=scopes, audience=AUDIENCE)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_access_token_credentials_call_all_four_kinds(
    protected: Ports, transport: str, issuer: TestIssuer, tls: Tls
) -> None:
    credentials = grpc.composite_channel_credentials(
        channel_credentials(transport, tls),
        grpc.access_token_call_credentials(_token(issuer, *ALL_SCOPES)),
    )
    with grpc.secure_channel(address(protected, transport), credentials) as channel:
        assert _call_all(channel) == _expected(SUBJECT)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_secure_channel_without_call_credentials_is_token_missing(
    protected: Ports, transport: str, tls: Tls
) -> None:
    credentials = channel_credentials(transport, tls)
    with grpc.secure_channel(address(protected, transport), credentials) as channel:
        refused = _refusals(channel)
    assert refused == dict.fromkeys(CLIENT.CALLS, (grpc.StatusCode.UNAUTHENTICATED, MISSING))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_read_only_token_reads_and_is_denied_writes(
    protected: Ports, transport: str, issuer: TestIssuer, tls: Tls
) -> None:
    credentials = grpc.composite_channel_credentials(
        channel_credentials(transport, tls),
        grpc.access_token_call_credentials(_token(issuer, "orders.read")),
    )
    with grpc.secure_channel(address(protected, transport), credentials) as channel:
        refused = _refusals(channel)
    denied = (grpc.StatusCode.PERMISSION_DENIED, DENIED)
    assert refused == {"UploadOrders": denied, "Chat": denied}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_forged_token_is_token_invalid(protected: Ports, transport: str, tls: Tls) -> None:
    forger = TestIssuer()  # same issuer name, another key
    credentials = grpc.composite_channel_credentials(
        channel_credentials(transport, tls),
        grpc.access_token_call_credentials(_token(forger, *ALL_SCOPES)),
    )
    with grpc.secure_channel(address(protected, transport), credentials) as channel:
        refused = _refusals(channel)
    invalid = (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")
    assert refused == dict.fromkeys(CLIENT.CALLS, invalid)


def test_per_call_credentials(protected: Ports, issuer: TestIssuer, tls: Tls) -> None:
    per_call = grpc.access_token_call_credentials(_token(issuer, "orders.read"))
    local = channel_credentials("local", tls)
    with grpc.secure_channel(address(protected, "local"), local) as channel:
        stub = CLIENT.pb_grpc.OrdersServiceStub(channel)
        response = stub.GetOrder(
            pb.GetOrderRequest(order_id="order-2"), credentials=per_call, timeout=10
        )
        listed = stub.ListOrders(pb.ListOrdersRequest(page_size=1), credentials=per_call)
        assert response.order.item == "yellow teapot"
        assert [item.order.order_id for item in listed] == ["order-1"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_aio_channel_with_access_token_credentials(
    protected: Ports, transport: str, issuer: TestIssuer, tls: Tls
) -> None:
    async def call_all() -> dict[str, str]:
        credentials = grpc.composite_channel_credentials(
            channel_credentials(transport, tls),
            grpc.access_token_call_credentials(_token(issuer, *ALL_SCOPES)),
        )
        async with grpc.aio.secure_channel(address(protected, transport), credentials) as ch:
            stub = CLIENT_AIO.pb_grpc.OrdersServiceStub(ch)
            return {name: await call(stub) for name, call in CLIENT_AIO.CALLS.items()}

    assert _normal(asyncio.run(call_all())) == _expected(SUBJECT)


def test_bearer_call_credentials_compose_like_grpcs_own(
    protected: Ports, issuer: TestIssuer, tls: Tls
) -> None:
    token = bearer_grpc.StaticToken(_token(issuer, *ALL_SCOPES))
    credentials = grpc.composite_channel_credentials(
        channel_credentials("tls", tls), bearer_grpc.bearer_call_credentials(token)
    )
    with grpc.secure_channel(address(protected, "tls"), credentials) as channel:
        assert _call_all(channel) == _expected(SUBJECT)

    async def call_all_aio() -> dict[str, str]:
        async with grpc.aio.secure_channel(address(protected, "tls"), credentials) as channel:
            stub = CLIENT_AIO.pb_grpc.OrdersServiceStub(channel)
            return {name: await call(stub) for name, call in CLIENT_AIO.CALLS.items()}

    assert _normal(asyncio.run(call_all_aio())) == _expected(SUBJECT)


def test_call_credentials_never_leave_a_plaintext_channel(
    protected: Ports, issuer: TestIssuer
) -> None:
    """gRPC itself refuses (research P7): UNAUTHENTICATED without bearer_grpc's ErrorInfo,
    so such a refusal is the client's setup, not the server's verdict."""
    credentials = grpc.composite_channel_credentials(
        grpc.experimental.insecure_channel_credentials(),
        grpc.access_token_call_credentials(_token(issuer, *ALL_SCOPES)),
    )
    with grpc.secure_channel(address(protected, "plaintext"), credentials) as channel:
        stub = CLIENT.pb_grpc.OrdersServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetOrder(pb.GetOrderRequest(order_id="order-1"), timeout=10)
    assert isinstance(caught.value, grpc.Call)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error_info(caught.value) is None
