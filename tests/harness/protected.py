"""The kit's Echo protected by bearer_grpc's server interceptor, with the policy the
interceptor, security and fault tests use; how such a server refuses (the RFC 6750
challenge), and the Echo in the other handler shapes grpc.aio dispatches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import grpc
import grpc.aio

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc import Policy
from bearer_grpc.core.tokens import IssuedToken
from bearer_grpc.testing import (
    SERVICE,
    Echo,
    Kind,
    LoopThread,
    assert_refused,
    path,
    serve,
    serve_aio,
)

ECHO_AUDIENCE: Final = "echo"
"""The audience the protected Echo servers require."""
ECHO_SCOPE: Final = "echo.use"
"""The scope every protected Echo method needs (:func:`echo_policy`)."""
ECHO_ADMIN_SCOPE: Final = "echo.admin"
"""The scope ``Admin`` needs instead."""
ECHO_METHODS: Final[dict[str, Kind]] = {"Public": "unary_unary", "Admin": "unary_unary"}
"""The Echo's methods besides the four kinds: two unary ones for the policy to tell apart."""


def echo_policy(**kwargs: Any) -> Policy:
    """Echo's rules: ``Public`` is public, ``Admin`` needs ``echo.admin``, the rest
    ``echo.use``; ``kwargs`` go to :class:`bearer_grpc.Policy`."""
    return Policy(
        public=[path("Public")],
        scopes={path("*"): [ECHO_SCOPE], path("Admin"): [ECHO_ADMIN_SCOPE]},
        **kwargs,
    )


@dataclass
class Protected:
    """A running Echo behind bearer_grpc's server interceptor, and what tests steer.

    Attributes:
        flavour: ``sync`` (``grpc.server``) or ``aio`` (``grpc.aio.server``).
        target: Its plaintext address.
        channel: A sync channel to it.
        interceptor: bearer_grpc's server interceptor (sync or aio, as the flavour).
        verifier: The interceptor's verifier.
        echo: The Echo it serves (its call counter and hooks).
    """

    flavour: str
    target: str
    channel: grpc.Channel
    interceptor: Any
    verifier: Any
    echo: Echo

    def revoke(self, token: IssuedToken) -> None:
        """Revoke ``token`` at this server's verifier, as WatchRevocations would."""
        self.verifier.local.revocations.add(token.token_id, token.expires_at)


@contextmanager
def protect(
    flavour: str,
    verifier: Any,
    policy: Policy | None = None,
    *,
    loop: LoopThread | None = None,
    echo: Echo | None = None,
    handlers: tuple[grpc.GenericRpcHandler, ...] = (),
    credentials: grpc.ServerCredentials | None = None,
) -> Iterator[Protected]:
    """Serve an Echo (with :data:`ECHO_METHODS`) behind the interceptor of ``flavour``.

    Args:
        flavour: ``sync`` or ``aio``.
        verifier: A verifier of that flavour.
        policy: The interceptor's policy (default: bearer_grpc's).
        loop: Where an aio server runs (required for ``aio``).
        echo: The Echo to serve (default: a new one).
        handlers: More services next to the Echo (aio: with async behaviours).
        credentials: The port's server credentials (default: plaintext); ``channel``
            is then of no use, reach ``target`` with matching channel credentials.
    """
    echo = echo or Echo(ECHO_METHODS)
    interceptor: Any
    if flavour == "sync":
        interceptor = bearer_grpc.BearerServerInterceptor(verifier, policy)
        serving = serve(
            [echo.handler(), *handlers], interceptors=[interceptor], credentials=credentials
        )
    else:
        assert loop is not None, "an aio server needs a LoopThread"
        interceptor = bearer_grpc.aio.BearerServerInterceptor(verifier, policy)
        serving = loop.context(
            serve_aio(
                [echo.aio_handler(), *handlers],
                interceptors=[interceptor],
                credentials=credentials,
            )
        )
    with serving as target, grpc.insecure_channel(target) as channel:
        yield Protected(flavour, target, channel, interceptor, verifier, echo)


def assert_challenged(
    error: grpc.RpcError,
    code: grpc.StatusCode,
    reason: str,
    challenge: str,
    required_scopes: str | None = None,
) -> None:
    """Code, ErrorInfo reason/domain and ``www-authenticate`` trailer of a refusal by
    bearer_grpc's server interceptor (``required_scopes``: the ErrorInfo's metadata)."""
    info = assert_refused(error, code, reason)
    if required_scopes is not None:
        assert dict(info.metadata) == {"required_scopes": required_scopes}
    trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    assert trailers["www-authenticate"] == challenge


def challenge(description: str) -> str:
    """The RFC 6750 challenge of an invalid token."""
    return f'Bearer error="invalid_token", error_description="{description}"'


def aio_extras(echo: Echo) -> grpc.GenericRpcHandler:
    """Two more Echo methods in shapes grpc.aio also dispatches: ``BidiReadWrite`` (the
    ``context.read()``/``context.write()`` API) and ``SyncUnary`` (a plain ``def``)."""

    async def bidi_read_write(requests: AsyncIterator[bytes], context: Any) -> None:
        echo.enter(context)
        while (request := await context.read()) is not grpc.aio.EOF:
            await context.write(echo.reply(context, request))

    def sync_unary(request: bytes, context: Any) -> bytes:
        echo.enter(context)
        return echo.reply(context, request)

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "BidiReadWrite": grpc.stream_stream_rpc_method_handler(bidi_read_write),
            "SyncUnary": grpc.unary_unary_rpc_method_handler(sync_unary),
        },
    )
