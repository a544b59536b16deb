"""Real servers for the certificate-binding tests: the kit's Echo behind the interceptor
on a mutual-TLS port, a TLS port that asks for no client certificate, and a plaintext
port; tokens with a ``cnf`` claim; channels as each client.

The Echo is served twice: under its own name (``path(...)``: an ordinary method, any
valid token) and as ``/bearer_grpc.testing.BoundEcho/*`` (``bound_path(...)``), which
the policy says accepts certificate-bound tokens only. Both need the scope ``echo.use``.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import grpc
import grpc.aio
import jwt

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc import Policy
from bearer_grpc.testing import Echo, Kind, LoopThread, TestIssuer, call, path
from tests.harness import ECHO_AUDIENCE, ECHO_METHODS, ECHO_SCOPE, Identity, Pki, aio_extras

REASON: Final = "TOKEN_BINDING_MISMATCH"
"""The ErrorInfo reason of every refusal these tests expect (a wire contract)."""
BOUND_SERVICE: Final = "bearer_grpc.testing.BoundEcho"
UNBOUND: Final = object()
"""``cnf`` of a token without one."""
_REQUESTS: Final[dict[str, list[tuple[bytes, ...]]]] = {
    "unary_unary": [(b"a",)],
    "unary_stream": [(b"a",), (b"a",)],
    "stream_unary": [(b"a", b"b")],
    "stream_stream": [(b"a",), (b"b",)],
}

Said = list[tuple[str | None, tuple[str, ...], tuple[bytes, ...]]]
"""Per response: the subject and scopes the handler saw, and the requests it answers."""


def answer(
    kind: str, subject: str | None = "alice", scopes: tuple[str, ...] = (ECHO_SCOPE,)
) -> Said:
    """What an Echo call of ``kind`` (requests ``a`` and ``b``) answers when its handler's
    ``current_principal()`` is ``subject`` with ``scopes``."""
    return [(subject, scopes, requests) for requests in _REQUESTS[kind]]


def ask(channel: grpc.Channel, kind: str, method: str, metadata: Any = None) -> Said:
    """Call ``method`` (a full name) as an Echo RPC of ``kind``; what each answer said."""
    kind_: Kind = kind  # type: ignore[assignment]
    answers = call(channel, kind_, method=method, metadata=metadata)
    return [(a.subject, a.scopes, a.requests) for a in answers]


def bound_path(method: str) -> str:
    """Full name of an Echo method served as ``/bearer_grpc.testing.BoundEcho/...``."""
    return f"/{BOUND_SERVICE}/{method}"


def bound_policy() -> Policy:
    """Echo's rules, and BoundEcho's: the same scope, certificate-bound tokens only."""
    return Policy(
        public=[path("Public")],
        scopes={path("*"): [ECHO_SCOPE], f"/{BOUND_SERVICE}/*": [ECHO_SCOPE]},
        certificate_bound=[f"/{BOUND_SERVICE}/*"],
    )


class _Aliased(grpc.GenericRpcHandler):
    """Serves the Echo's methods under ``/bearer_grpc.testing.BoundEcho/`` as well."""

    def __init__(self, *echo: grpc.GenericRpcHandler) -> None:
        self._echo = echo

    def service(self, details: grpc.HandlerCallDetails) -> Any:
        service, _, method = details.method.rpartition("/")
        if service != f"/{BOUND_SERVICE}":
            return None
        renamed = _Details(path(method), details.invocation_metadata)
        found = (handler.service(renamed) for handler in self._echo)
        return next((handler for handler in found if handler is not None), None)


@dataclass
class _Details:
    method: str
    invocation_metadata: Any


@dataclass(frozen=True)
class Ports:
    """Where one server listens (all on 127.0.0.1).

    Attributes:
        mtls: TLS requiring a client certificate the test CA signed.
        tls: TLS without client certificates.
        plaintext: No TLS.
    """

    mtls: str
    tls: str
    plaintext: str


def _add_ports(server: Any, pki: Pki) -> Ports:
    pair = [(pki.server.key_pem, pki.server.cert_pem)]
    mtls = grpc.ssl_server_credentials(pair, root_certificates=pki.ca_pem, require_client_auth=True)
    numbers = (
        server.add_secure_port("127.0.0.1:0", mtls),
        server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(pair)),
        server.add_insecure_port("127.0.0.1:0"),
    )
    return Ports(*(f"127.0.0.1:{number}" for number in numbers))


@contextmanager
def serve_sync(interceptor: grpc.ServerInterceptor, echo: Echo, pki: Pki) -> Iterator[Ports]:
    """A ``grpc.server`` with Echo and BoundEcho behind ``interceptor``."""
    server = grpc.server(ThreadPoolExecutor(max_workers=4), interceptors=[interceptor])
    handler = echo.handler()
    server.add_generic_rpc_handlers((handler, _Aliased(handler)))
    ports = _add_ports(server, pki)
    server.start()
    try:
        yield ports
    finally:
        server.stop(None).wait()


@contextmanager
def serve_aio(
    loop: LoopThread, interceptor: grpc.aio.ServerInterceptor, echo: Echo, pki: Pki
) -> Iterator[Ports]:
    """A ``grpc.aio.server`` like :func:`serve_sync`, running on ``loop``; its
    ``BidiReadWrite`` uses ``context.read()``/``context.write()``."""

    async def start() -> tuple[grpc.aio.Server, Ports]:
        server = grpc.aio.server(interceptors=[interceptor])
        handlers = (echo.aio_handler(), aio_extras(echo))
        server.add_generic_rpc_handlers((*handlers, _Aliased(*handlers)))
        ports = _add_ports(server, pki)
        await server.start()
        return server, ports

    server, ports = loop.run(start())
    try:
        yield ports
    finally:
        loop.run(server.stop(None))


def mtls_channel(
    target: str, pki: Pki, client: Identity, server_name: str | None = None
) -> grpc.Channel:
    """A channel to ``target`` presenting ``client``'s certificate (``server_name``: the
    name to check the server's certificate for, when ``target`` does not hold it)."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca_pem, private_key=client.key_pem, certificate_chain=client.cert_pem
    )
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.secure_channel(target, credentials, options=options)


def tls_channel(target: str, pki: Pki) -> grpc.Channel:
    """A TLS channel to ``target`` without a client certificate."""
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=pki.ca_pem))


@dataclass(frozen=True)
class Tokens:
    """Signs tokens the servers trust (``alice``'s, client ``echo-client``, with a fresh
    ``jti`` each), with or without a ``cnf`` claim."""

    issuer: TestIssuer

    def token(
        self, cnf: Any = UNBOUND, *, scopes: tuple[str, ...] = (ECHO_SCOPE,), age: int = 0
    ) -> str:
        """A token valid for 300 s issued ``age`` seconds ago, with ``cnf`` (none if
        UNBOUND)."""
        issued = self.issuer.token(
            subject="alice",
            client_id="echo-client",
            scopes=scopes,
            audience=ECHO_AUDIENCE,
            lifetime=300,
            age=age,
        )
        if cnf is UNBOUND:
            return issued
        claims = jwt.decode(issued, options={"verify_signature": False})
        claims["cnf"] = cnf
        return self.issuer.key.sign(claims)

    def bound_to(self, client: Identity, **kwargs: Any) -> str:
        """A token bound to ``client``'s certificate (``cnf.x5t#S256``)."""
        return self.token({"x5t#S256": client.x5t}, **kwargs)

    def verifier(self, flavour: str) -> Any:
        """A ``Verifier`` of that flavour trusting these tokens (on their clock)."""
        if flavour == "sync":
            return self.issuer.verifier(audience=ECHO_AUDIENCE)
        return self.issuer.aio_verifier(audience=ECHO_AUDIENCE)


@dataclass
class Server:
    """One running server, its ports, and a channel per way of reaching it.

    ``channels``: one per client of the PKI (mutual TLS with its certificate), ``tls``
    (no client certificate), ``plaintext``.
    """

    flavour: str
    ports: Ports
    echo: Echo
    verifier: Any
    channels: dict[str, grpc.Channel] = field(default_factory=dict)

    def close(self) -> None:
        """Close every channel."""
        for channel in self.channels.values():
            channel.close()


def open_channels(server: Server, pki: Pki) -> Server:
    """Open ``server``'s channels (see :class:`Server`)."""
    ports = server.ports
    server.channels = {
        **{name: mtls_channel(ports.mtls, pki, client) for name, client in pki.clients.items()},
        "tls": tls_channel(ports.tls, pki),
        "plaintext": grpc.insecure_channel(ports.plaintext),
    }
    return server


@contextmanager
def running(
    flavour: str, verifier: Any, pki: Pki, loop: LoopThread, *args: Any, **options: Any
) -> Iterator[Server]:
    """A server of ``flavour`` behind the interceptor made of ``verifier``, ``args`` and
    ``options`` (its policy, ``trusted_certificate_header``), with its channels open."""
    if flavour == "sync":
        echo = Echo({**ECHO_METHODS, "BidiReadWrite": "stream_stream"})
        interceptor = bearer_grpc.BearerServerInterceptor(verifier, *args, **options)
        serving = serve_sync(interceptor, echo, pki)
    else:
        echo = Echo(ECHO_METHODS)
        aio_interceptor = bearer_grpc.aio.BearerServerInterceptor(verifier, *args, **options)
        serving = serve_aio(loop, aio_interceptor, echo, pki)
    with serving as ports:
        server = open_channels(Server(flavour, ports, echo, verifier), pki)
        try:
            yield server
        finally:
            server.close()
