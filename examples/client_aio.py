"""Calls the shop's OrdersService with access tokens from bearer-grpc (``grpc.aio``).

With ``bearer-grpc serve`` and a shop server running (see examples/README.md)::

    export BEARER_GRPC_CLIENT_SECRET=...   # printed once by `bearer-grpc clients add shop`
    python examples/client_aio.py --client-id shop --tokens 127.0.0.1:50051 --target 127.0.0.1:50061

The asyncio twin of ``client.py``: one call of each kind, one line per call (results on
stdout, failures on stderr), exit status 1 if any call failed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

import bearer_grpc.aio
from shop.v1 import orders_pb2 as pb
from shop.v1 import orders_pb2_grpc as pb_grpc

AUDIENCE = "orders"
TIMEOUT = 10.0  # seconds, per call


async def get_order(orders: pb_grpc.OrdersServiceAsyncStub) -> str:
    """Unary."""
    response = await orders.GetOrder(pb.GetOrderRequest(order_id="order-1"), timeout=TIMEOUT)
    order = response.order
    return f"{order.order_id}: {order.quantity} x {order.item} (created by {order.created_by})"


async def list_orders(orders: pb_grpc.OrdersServiceAsyncStub) -> str:
    """Server streaming."""
    call = orders.ListOrders(pb.ListOrdersRequest(page_size=3), timeout=TIMEOUT)
    return ", ".join([response.order.order_id async for response in call])


async def upload_orders(orders: pb_grpc.OrdersServiceAsyncStub) -> str:
    """Client streaming."""

    async def requests() -> AsyncIterator[pb.UploadOrdersRequest]:
        yield pb.UploadOrdersRequest(item="green lamp", quantity=1)
        yield pb.UploadOrdersRequest(item="grey rug", quantity=3)

    response = await orders.UploadOrders(requests(), timeout=TIMEOUT)
    return f"created {', '.join(response.order_ids)} for {response.created_by}"


async def chat(orders: pb_grpc.OrdersServiceAsyncStub) -> str:
    """Bidirectional streaming."""

    async def requests() -> AsyncIterator[pb.ChatRequest]:
        yield pb.ChatRequest(text="hello")
        yield pb.ChatRequest(text="anything new?")

    call = orders.Chat(requests(), timeout=TIMEOUT)
    return " / ".join([response.text async for response in call])


CALLS: dict[str, Callable[[pb_grpc.OrdersServiceAsyncStub], Awaitable[str]]] = {
    "GetOrder": get_order,
    "ListOrders": list_orders,
    "UploadOrders": upload_orders,
    "Chat": chat,
}


def failure(error: grpc.aio.AioRpcError) -> str:
    """``CODE [REASON]: details``; REASON is the ErrorInfo reason bearer_grpc sends
    with every refusal (TOKEN_MISSING, TOKEN_EXPIRED, INSUFFICIENT_SCOPE, ...)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    reasons = []
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            reasons.append(info.reason)
    reason = f" [{', '.join(reasons)}]" if reasons else ""
    return f"{error.code().name}{reason}: {error.details()}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (the secret comes from the environment, never a flag)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="The client secret is read from BEARER_GRPC_CLIENT_SECRET.",
    )
    parser.add_argument("--client-id", required=True, help="the client's id")
    parser.add_argument(
        "--tokens", default="127.0.0.1:50051", help="the TokenService (default %(default)s)"
    )
    parser.add_argument(
        "--target", default="127.0.0.1:50061", help="the OrdersService (default %(default)s)"
    )
    args = parser.parse_args(argv)
    args.secret = os.environ.get("BEARER_GRPC_CLIENT_SECRET", "")
    if not args.secret:
        parser.error("set BEARER_GRPC_CLIENT_SECRET to the client's secret")
    return args


async def run(args: argparse.Namespace) -> int:
    """Make every call; 0 if all succeeded, 1 otherwise."""
    failed = 0
    # Requests (and renews) tokens with every scope the client has, for this audience.
    tokens = bearer_grpc.aio.ClientCredentials(
        args.tokens, args.client_id, args.secret, audience=AUDIENCE
    )
    bearer = bearer_grpc.aio.BearerClientInterceptor(tokens)
    async with tokens, grpc.aio.insecure_channel(args.target, interceptors=bearer) as channel:
        orders = pb_grpc.OrdersServiceStub(channel)
        for name, call in CALLS.items():
            try:
                print(f"{name}: {await call(orders)}", flush=True)
            except grpc.aio.AioRpcError as error:
                print(f"{name}: failed: {failure(error)}", file=sys.stderr, flush=True)
                failed += 1
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Run :func:`run` with the command line."""
    args = parse_args(argv)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # bearer_grpc's warnings
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
