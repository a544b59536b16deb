"""Unary echo servers, run as a subprocess: ``python -m benchkit.echo_server``.

Reads one JSON config line on stdin (``flavour``: sync|aio, ``variants``: a list of
bare|naive|bearer, ``jwks``, ``issuer``, ``audience``, ``lifetime``), starts one server per
variant on its own port, prints ``TARGET host:port`` for each (in order) once listening and
serves until stdin is closed (or ``lifetime`` seconds passed). One process per flavour keeps
start-up short; the servers not being measured sit idle (no CPU).

The service is the kit's Echo (``bearer_grpc.testing``) in its plain mode: ``Unary`` returns
the request bytes, so every variant's handler does the same (almost no) work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
from collections.abc import Callable
from typing import Any

import jwt

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc.testing import Echo, path, serve, serve_aio
from benchkit.naive import NaiveAioInterceptor, NaiveInterceptor

METHOD = path("Unary")
SYNC_WORKERS = 8


def interceptors(config: dict[str, Any], variant: str) -> list[Any]:
    """The interceptors of ``variant`` for ``config["flavour"]``."""
    flavour = config["flavour"]
    issuer, audience, jwks = config["issuer"], config["audience"], config["jwks"]
    if variant == "bare":
        return []
    if variant == "naive":
        key = jwt.PyJWK(jwks["keys"][0]).key
        if flavour == "sync":
            return [NaiveInterceptor(key, issuer, audience)]
        return [NaiveAioInterceptor(key, issuer, audience)]
    if variant != "bearer":
        raise SystemExit(f"unknown variant {variant}")
    if flavour == "sync":
        verifier = bearer_grpc.Verifier.from_jwks(jwks, issuer=issuer, audience=audience)
        return [bearer_grpc.BearerServerInterceptor(verifier)]
    aio_verifier = bearer_grpc.aio.Verifier.from_jwks(jwks, issuer=issuer, audience=audience)
    return [bearer_grpc.aio.BearerServerInterceptor(aio_verifier)]


def _on_stdin_closed(callback: Callable[[], None]) -> None:
    def wait() -> None:
        sys.stdin.buffer.read()
        callback()

    threading.Thread(target=wait, daemon=True).start()


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    loop.call_soon_threadsafe(callback)


def _announce(target: str) -> None:
    print(f"TARGET {target}", flush=True)


def run(config: dict[str, Any]) -> None:
    """Serve the echo until stdin is closed (or ``config["lifetime"]`` seconds pass)."""
    chosen = [interceptors(config, variant) for variant in config["variants"]]
    lifetime = config.get("lifetime", 3600)
    if config["flavour"] == "sync":
        handler = Echo(plain=True).handler()
        done = threading.Event()
        _on_stdin_closed(done.set)
        with contextlib.ExitStack() as stack:
            for each in chosen:
                _announce(
                    stack.enter_context(
                        serve([handler], interceptors=each, max_workers=SYNC_WORKERS)
                    )
                )
            done.wait(lifetime)
        return

    async def main() -> None:
        handler = Echo(plain=True).aio_handler()
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        _on_stdin_closed(lambda: _call_soon(loop, done.set))
        async with contextlib.AsyncExitStack() as stack:
            for each in chosen:
                _announce(await stack.enter_async_context(serve_aio([handler], interceptors=each)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), lifetime)

    asyncio.run(main())


if __name__ == "__main__":
    run(json.loads(sys.stdin.buffer.readline()))
