"""The kit's Echo protected by bearer_grpc's server interceptor, with the policy the
interceptor, security and fault tests use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import grpc

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc import Policy
from bearer_grpc.core.tokens import IssuedToken
from bearer_grpc.testing import Echo, Kind, LoopThread, path, serve, serve_aio

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
