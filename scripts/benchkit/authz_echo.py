"""``bearer-grpc authz``'s Check next to a bare echo on one ``grpc.aio`` server, run as a
subprocess: ``python -m benchkit.authz_echo``.

Reads one JSON config line on stdin (``jwks``, ``issuer``, ``audience``), serves
``envoy.service.auth.v3.Authorization/Check`` (the product's servicer, verifier
``from_jwks``, default policy), ``/bench.Echo/Echo`` (bytes back as they came) and
``/bench.Echo/EchoMessage`` (the request parsed as a ``CheckRequest`` and sent back,
serialized again: the same protobuf work a Check does on its way in) on one port, prints
``TARGET host:port`` and serves until stdin is closed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Any

import grpc
import grpc.aio
from envoy.service.auth.v3 import external_auth_pb2_grpc
from envoy.service.auth.v3.external_auth_pb2 import CheckRequest

import bearer_grpc.aio
from bearer_grpc.authz.servicer import AuthorizationServicer
from benchkit.echo_server import SERVICE


async def _echo(request: Any, context: Any) -> Any:
    return request


async def main(config: dict[str, Any]) -> None:
    """Serve until stdin is closed."""
    verifier = bearer_grpc.aio.Verifier.from_jwks(
        config["jwks"], issuer=config["issuer"], audience=config["audience"]
    )
    server = grpc.aio.server()
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(
        AuthorizationServicer(verifier, bearer_grpc.Policy()), server
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Echo": grpc.unary_unary_rpc_method_handler(_echo),
                    "EchoMessage": grpc.unary_unary_rpc_method_handler(
                        _echo,
                        request_deserializer=CheckRequest.FromString,
                        response_serializer=CheckRequest.SerializeToString,
                    ),
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"TARGET 127.0.0.1:{port}", flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    threading.Thread(
        target=lambda: (sys.stdin.buffer.read(), loop.call_soon_threadsafe(done.set)), daemon=True
    ).start()
    await done.wait()
    await server.stop(None)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.stdin.buffer.readline())))
