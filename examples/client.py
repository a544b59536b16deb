"""Calls the shop's OrdersService with access tokens from bearer-grpc (sync ``grpc``).

With ``bearer-grpc serve`` and ``server.py`` running (see examples/README.md)::

    export BEARER_GRPC_CLIENT_SECRET=...   # printed once by `bearer-grpc clients add shop`
    python examples/client.py --client-id shop --tokens 127.0.0.1:50051 --target 127.0.0.1:50061

Makes one call of each kind and prints one line per call: the result on stdout, or the
status (with bearer_grpc's ErrorInfo reason) on stderr. Exits 1 if any call failed.
``client_aio.py`` does the same on ``grpc.aio``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

import bearer_grpc
from shop.v1 import orders_pb2 as pb
from shop.v1 import orders_pb2_grpc as pb_grpc

AUDIENCE = "orders"
TIMEOUT = 10.0  # seconds, per call


def get_order(orders: pb_grpc.OrdersServiceStub) -> str:
    """Unary."""
    response = orders.GetOrder(pb.GetOrderRequest(order_id="order-1"), timeout=TIMEOUT)
    order = response.order
    return f"{order.order_id}: {order.quantity} x {order.item} (created by {order.created_by})"


def list_orders(orders: pb_grpc.OrdersServiceStub) -> str:
    """Server streaming."""
    responses = orders.ListOrders(pb.ListOrdersRequest(page_size=3), timeout=TIMEOUT)
    return ", ".join(response.order.order_id for response in responses)


def upload_orders(orders: pb_grpc.OrdersServiceStub) -> str:
    """Client streaming."""
    requests = iter(
        [
            pb.UploadOrdersRequest(item="green lamp", quantity=1),
            pb.UploadOrdersRequest(item="grey rug", quantity=3),
        ]
    )
    response = orders.UploadOrders(requests, timeout=TIMEOUT)
    return f"created {', '.join(response.order_ids)} for {response.created_by}"


def chat(orders: pb_grpc.OrdersServiceStub) -> str:
    """Bidirectional streaming."""
    requests = iter([pb.ChatRequest(text="hello"), pb.ChatRequest(text="anything new?")])
    return " / ".join(response.text for response in orders.Chat(requests, timeout=TIMEOUT))


CALLS: dict[str, Callable[[pb_grpc.OrdersServiceStub], str]] = {
    "GetOrder": get_order,
    "ListOrders": list_orders,
    "UploadOrders": upload_orders,
    "Chat": chat,
}


def failure(error: grpc.RpcError) -> str:
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


def main(argv: list[str] | None = None) -> int:
    """Make every call; 0 if all succeeded, 1 otherwise."""
    args = parse_args(argv)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # bearer_grpc's warnings
    failed = 0
    # Requests (and renews) tokens with every scope the client has, for this audience.
    with bearer_grpc.ClientCredentials(
        args.tokens, args.client_id, args.secret, audience=AUDIENCE
    ) as tokens:
        channel = grpc.intercept_channel(
            grpc.insecure_channel(args.target), bearer_grpc.BearerClientInterceptor(tokens)
        )
        with channel:
            orders = pb_grpc.OrdersServiceStub(channel)
            for name, call in CALLS.items():
                try:
                    print(f"{name}: {call(orders)}", flush=True)
                except grpc.RpcError as error:
                    print(f"{name}: failed: {failure(error)}", file=sys.stderr, flush=True)
                    failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
