"""The shop's OrdersService, protected by bearer_grpc, on a sync ``grpc.server``.

With ``bearer-grpc serve`` running (see examples/README.md)::

    python examples/server.py --tokens 127.0.0.1:50051 --listen 127.0.0.1:50061

Tokens are verified locally with the keys the TokenService publishes; revocations reach
the server within moments. Once it accepts calls it prints ``listening on HOST:PORT``
(``--listen 127.0.0.1:0`` picks a free port); it logs one line per call on stderr and
stops on SIGTERM or Ctrl-C. ``server_aio.py`` is the same service on ``grpc.aio``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import signal
import threading
from collections.abc import Iterator
from concurrent import futures
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2_grpc

import bearer_grpc
from shop.v1 import orders_pb2 as pb
from shop.v1 import orders_pb2_grpc as pb_grpc

AUDIENCE = "orders"
SERVICE = "shop.v1.OrdersService"
GRACE = 5.0  # seconds in-flight calls get to finish after SIGTERM

# Who may call what. Health checking needs no token; a method missing here would need a
# valid token with no particular scope, but strict mode makes forgetting one an error.
POLICY = bearer_grpc.Policy(
    public=["/grpc.health.v1.Health/*"],
    scopes={
        f"/{SERVICE}/GetOrder": ["orders.read"],
        f"/{SERVICE}/ListOrders": ["orders.read"],
        f"/{SERVICE}/UploadOrders": ["orders.write"],
        f"/{SERVICE}/Chat": ["orders.write"],
    },
    strict=True,
)

SEED = (("blue widget", 2), ("yellow teapot", 1), ("red chair", 4))

log = logging.getLogger("shop")


class Orders:
    """The shop's orders, in memory, safe to use from the server's worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._orders: dict[str, pb.Order] = {}
        for item, quantity in SEED:
            self.add(item, quantity, created_by="shop-admin")

    def add(self, item: str, quantity: int, *, created_by: str) -> pb.Order:
        """Create an order and return it."""
        with self._lock:
            order_id = f"order-{next(self._ids)}"
            order = pb.Order(order_id=order_id, item=item, quantity=quantity, created_by=created_by)
            self._orders[order_id] = order
            return order

    def get(self, order_id: str) -> pb.Order | None:
        """The order, or None."""
        with self._lock:
            return self._orders.get(order_id)

    def list(self, limit: int = 0) -> list[pb.Order]:
        """The oldest ``limit`` orders (all for 0)."""
        with self._lock:
            orders = list(self._orders.values())
        return orders[:limit] if limit > 0 else orders


class OrdersServicer(pb_grpc.OrdersServiceServicer):
    """The handlers: plain gRPC, plus ``current_principal()`` where the caller matters."""

    def __init__(self, orders: Orders | None = None) -> None:
        self._orders = orders or Orders()

    def GetOrder(
        self, request: pb.GetOrderRequest, context: grpc.ServicerContext
    ) -> pb.GetOrderResponse:
        caller = bearer_grpc.current_principal()
        log.info("GetOrder %s for %s", request.order_id, caller.subject)
        order = self._orders.get(request.order_id)
        if order is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no order {request.order_id!r}")
        return pb.GetOrderResponse(order=order)

    def ListOrders(
        self, request: pb.ListOrdersRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ListOrdersResponse]:
        caller = bearer_grpc.current_principal()
        log.info("ListOrders for %s", caller.subject)
        for order in self._orders.list(request.page_size):
            yield pb.ListOrdersResponse(order=order)

    def UploadOrders(
        self, request_iterator: Iterator[pb.UploadOrdersRequest], context: grpc.ServicerContext
    ) -> pb.UploadOrdersResponse:
        caller = bearer_grpc.current_principal()
        created = [
            self._orders.add(request.item, request.quantity, created_by=caller.subject)
            for request in request_iterator
        ]
        log.info("UploadOrders: %d orders from %s", len(created), caller.subject)
        return pb.UploadOrdersResponse(
            order_ids=[order.order_id for order in created], created_by=caller.subject
        )

    def Chat(
        self, request_iterator: Iterator[pb.ChatRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.ChatResponse]:
        caller = bearer_grpc.current_principal()
        log.info("Chat with %s", caller.subject)
        for request in request_iterator:
            yield pb.ChatResponse(text=f"{caller.subject} said {request.text!r}")


def create_server(verifier: bearer_grpc.Verifier, *, max_workers: int = 16) -> grpc.Server:
    """The OrdersService and health checking behind the bearer interceptor (no port yet).

    Raises:
        bearer_grpc.PolicyError: A method of a registered service has no rule.
    """
    interceptor = bearer_grpc.BearerServerInterceptor(verifier, POLICY)
    interceptor.check_services([SERVICE, health.SERVICE_NAME])
    pool = futures.ThreadPoolExecutor(max_workers=max_workers)
    server = grpc.server(pool, interceptors=[interceptor])
    pb_grpc.add_OrdersServiceServicer_to_server(OrdersServicer(), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    return server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tokens", default="127.0.0.1:50051", help="the TokenService (default %(default)s)"
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:50061", help="address to serve on (default %(default)s)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with bearer_grpc.Verifier.from_token_service(args.tokens, audience=AUDIENCE) as verifier:
        server = create_server(verifier)
        port = server.add_insecure_port(args.listen)
        server.start()
        print(f"listening on {args.listen.rpartition(':')[0]}:{port}", flush=True)
        stopping.wait()
        server.stop(GRACE).wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
