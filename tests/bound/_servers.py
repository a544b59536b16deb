"""Real servers for the certificate-binding tests: the Echo service behind the
interceptor on a mutual-TLS port, a TLS port that asks for no client certificate, and a
plaintext port; tokens with a ``cnf`` claim; channels as each client.

The Echo handlers are served twice: as ``/test.v1.Echo/*`` (an ordinary method: any
valid token) and as ``/test.v1.BoundEcho/*``, which the policy says accepts
certificate-bound tokens only. Both need the scope ``echo.use``.
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
from tests.bound._pki import Identity, Pki
from tests.harness import LoopThread
from tests.interceptors import support
from tests.interceptors.echo import SERVICE, Calls, aio_handlers, path, sync_handlers
from tests.interceptors.support import AUDIENCE, ISSUER, SCOPE

REASON: Final = "TOKEN_BINDING_MISMATCH"
"""The ErrorInfo reason of every refusal these tests expect (a wire contract)."""
BOUND_SERVICE: Final = "test.v1.BoundEcho"
UNBOUND: Final = object()
"""``cnf`` of a token without one."""


def answer(kind: str, caller: str = "alice|echo.use") -> bytes | list[bytes]:
    """What an Echo call of ``kind`` answers: its handler's ``current_principal()`` as
    ``subject|scopes``, and the requests ``a`` and ``b`` it read."""
    said = caller.encode()
    answers: dict[str, bytes | list[bytes]] = {
        "unary_unary": said,
        "unary_stream": [said, said],
        "stream_unary": said + b"|a,b",
        "stream_stream": [said + b"|a", said + b"|b"],
    }
    return answers[kind]


def bound_path(method: str) -> str:
    """Full name of an Echo method served as ``/test.v1.BoundEcho/...``."""
    return f"/{BOUND_SERVICE}/{method}"


def bound_policy() -> Policy:
    """Echo's rules, and BoundEcho's: the same scope, certificate-bound tokens only."""
    return Policy(
        public=[path("Public")],
        scopes={f"/{SERVICE}/*": [SCOPE], f"/{BOUND_SERVICE}/*": [SCOPE]},
        certificate_bound=[f"/{BOUND_SERVICE}/*"],
    )


class _Aliased(grpc.GenericRpcHandler):
    """Serves an Echo handler's methods under ``/test.v1.BoundEcho/`` as well."""

    def __init__(self, echo: grpc.GenericRpcHandler) -> None:
        self._echo = echo

    def service(self, details: grpc.HandlerCallDetails) -> Any:
        service, _, method = details.method.rpartition("/")
        if service != f"/{BOUND_SERVICE}":
            return None
        return self._echo.service(_Details(path(method), details.invocation_metadata))


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


def _add_ports(server: Any, pki: Pki) -> tuple[int, int, int]:
    pair = [(pki.server.key_pem, pki.server.cert_pem)]
    mtls = grpc.ssl_server_credentials(pair, root_certificates=pki.ca_pem, require_client_auth=True)
    return (
        server.add_secure_port("127.0.0.1:0", mtls),
        server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(pair)),
        server.add_insecure_port("127.0.0.1:0"),
    )


def _ports(numbers: tuple[int, int, int]) -> Ports:
    return Ports(*(f"127.0.0.1:{number}" for number in numbers))


@contextmanager
def serve_sync(interceptor: grpc.ServerInterceptor, calls: Calls, pki: Pki) -> Iterator[Ports]:
    """A ``grpc.server`` with Echo and BoundEcho behind ``interceptor``."""
    server = grpc.server(ThreadPoolExecutor(max_workers=4), interceptors=[interceptor])
    echo = sync_handlers(calls)
    server.add_generic_rpc_handlers((echo, _Aliased(echo)))
    ports = _ports(_add_ports(server, pki))
    server.start()
    try:
        yield ports
    finally:
        server.stop(None).wait()


@contextmanager
def serve_aio(
    loop: LoopThread, interceptor: grpc.aio.ServerInterceptor, calls: Calls, pki: Pki
) -> Iterator[Ports]:
    """A ``grpc.aio.server`` like :func:`serve_sync`, running on ``loop``."""

    async def start() -> tuple[grpc.aio.Server, Ports]:
        server = grpc.aio.server(interceptors=[interceptor])
        echo = aio_handlers(calls)
        server.add_generic_rpc_handlers((echo, _Aliased(echo)))
        ports = _ports(_add_ports(server, pki))
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


class Tokens(support.Tokens):
    """Signs tokens the servers trust (``alice``'s, with a fresh ``jti`` each), with or
    without a ``cnf`` claim."""

    def token(self, cnf: Any = UNBOUND, *, scopes: tuple[str, ...] = (SCOPE,), age: int = 0) -> str:
        """A token issued ``age`` seconds ago with ``cnf`` (none if UNBOUND)."""
        issued = self.issue(scopes=scopes, age=age).token
        if cnf is UNBOUND:
            return issued
        claims = jwt.decode(issued, options={"verify_signature": False})
        claims["cnf"] = cnf
        return self.key.sign(claims)

    def bound_to(self, client: Identity, **kwargs: Any) -> str:
        """A token bound to ``client``'s certificate (``cnf.x5t#S256``)."""
        return self.token({"x5t#S256": client.x5t}, **kwargs)

    def verifier(self, flavour: str) -> Any:
        """A ``Verifier`` of that flavour trusting these tokens (on their clock)."""
        module: Any = bearer_grpc if flavour == "sync" else bearer_grpc.aio
        return module.Verifier.from_jwks(
            self.jwks, issuer=ISSUER, audience=AUDIENCE, clock=self.clock
        )


@dataclass
class Server:
    """One running server, its ports, and a channel per way of reaching it.

    ``channels``: ``alice`` and ``mallory`` (mutual TLS with their certificates),
    ``tls`` (no client certificate), ``plaintext``.
    """

    flavour: str
    ports: Ports
    calls: Calls
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
    calls = Calls()
    if flavour == "sync":
        interceptor = bearer_grpc.BearerServerInterceptor(verifier, *args, **options)
        serving = serve_sync(interceptor, calls, pki)
    else:
        aio_interceptor = bearer_grpc.aio.BearerServerInterceptor(verifier, *args, **options)
        serving = serve_aio(loop, aio_interceptor, calls, pki)
    with serving as ports:
        server = open_channels(Server(flavour, ports, calls, verifier), pki)
        try:
            yield server
        finally:
            server.close()
