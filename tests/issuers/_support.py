"""Real parts for the issuer tests: the npm package oidc-provider in a subprocess, a
local HTTP server that publishes what a test tells it to (and logs every request), a
test CA, and vendor-shaped tokens signed by a test key."""

from __future__ import annotations

import json
import selectors
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from bearer_grpc.testing import Kind, bearer, call
from tests.harness import make_pki

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SVC = ("svc", "svc-secret-0123456789abcdef0123456789abcdef")
API = ("orders-api", "api-secret-0123456789abcdef0123456789abcdef")
ORDERS = "https://orders.test"
START_TIMEOUT = 30.0


class OidcProvider:
    """oidc-provider (node) on 127.0.0.1; ``restart()`` keeps the port, changes the key.

    Args:
        tls: (certificate, key) PEM files to serve HTTPS with, or None.
    """

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.tls = tls
        self.port = 0
        self.issuer = ""
        self.kid = ""
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> OidcProvider:
        """Start it and wait for the line it prints once listening (no sleep)."""
        args = ["node", str(HERE / "provider.mjs"), str(self.port)]
        if self.tls is not None:
            args += [str(self.tls[0]), str(self.tls[1])]
        process = subprocess.Popen(
            args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self._process = process
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(START_TIMEOUT):
                self.stop()
                raise RuntimeError("oidc-provider did not start")
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"oidc-provider exited: {process.wait()}")
        started = json.loads(line)
        self.issuer, self.kid = started["issuer"], started["kid"]
        self.port = int(self.issuer.rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        """Stop it (the port stays free for a restart)."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None

    def restart(self) -> None:
        """Stop it and start it again on the same port, with a new signing key."""
        self.stop()
        self.start()

    def token(self, resource: str = ORDERS, scope: str = "orders.read", **kwargs: Any) -> str:
        """An access token for ``svc`` by the client_credentials grant (RFC 8707 resource)."""
        answer = httpx.post(
            f"{self.issuer}/token",
            data={"grant_type": "client_credentials", "resource": resource, "scope": scope},
            auth=SVC,
            timeout=10,
            **kwargs,
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])


@contextmanager
def running_provider(tls: tuple[Path, Path] | None = None) -> Iterator[OidcProvider]:
    """An :class:`OidcProvider`, stopped when the block ends."""
    provider = OidcProvider(tls).start()
    try:
        yield provider
    finally:
        provider.stop()


@dataclass
class Route:
    """What the local server answers on one path.

    Attributes:
        body: The body (bytes, or a JSON-able object).
        status: The status code.
        headers: Extra headers.
        stall: Seconds to wait between the headers and the body.
    """

    body: Any = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0


class LocalServer:
    """An HTTP server on 127.0.0.1 that answers what :attr:`routes` say and logs every
    request path (with its headers) in :attr:`requests`."""

    def __init__(self) -> None:
        self.routes: dict[str, Route | Callable[[], Route]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.stop_stalling = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.path, dict(self.headers)))
                route = owner.routes.get(self.path, Route(b"not found", 404))
                if callable(route):
                    route = route()
                body = route.body
                if not isinstance(body, bytes):
                    body = json.dumps(body).encode()
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if route.stall:
                    owner.stop_stalling.wait(route.stall)
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def paths(self) -> list[str]:
        """Every path requested so far."""
        return [path for path, _ in self.requests]

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_stalling.set()
        self._server.shutdown()
        self._server.server_close()


def make_ca(folder: Path, host: str = "localhost") -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``host`` (and 127.0.0.1) it signed (the shared
    test PKI), written into ``folder``.

    Returns:
        (CA certificate, server certificate, server key) PEM files.
    """
    pki = make_pki(host=host)
    return (pki.write_ca(folder), *pki.server.write(folder, "server"))


class VendorKey:
    """A test RSA key an identity provider would sign with, and its JWKS (no ``alg``
    member when ``with_alg`` is false, as Entra publishes its keys)."""

    def __init__(self, kid: str = "vendor-key-1", *, with_alg: bool = True) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        jwk.update(kid=kid, use="sig")
        if with_alg:
            jwk["alg"] = "RS256"
        self.jwk = jwk

    @property
    def jwks(self) -> dict[str, Any]:
        """``{"keys": [its public JWK]}``."""
        return {"keys": [self.jwk]}

    def sign(self, claims: dict[str, Any], typ: str | None = "JWT", **header: Any) -> str:
        """A compact RS256 JWS of ``claims`` with this ``typ`` (None: no ``typ``)."""
        fields = {"kid": self.kid, "typ": typ, **header}  # PyJWT drops a typ of None
        return jwt.encode(claims, self.private, algorithm="RS256", headers=fields)


def echo_answer(channel: grpc.Channel, kind: Kind, token: str | None) -> bytes:
    """Call the kit's Echo once with ``token`` (one request); ``issuer|subject|scopes`` of
    the caller its handler saw (every response of the call must agree)."""
    metadata = bearer(token) if token is not None else ()
    answers = call(channel, kind, metadata=metadata, requests=(b"x",))
    (seen,) = {f"{a.issuer}|{a.subject}|{' '.join(a.scopes)}" for a in answers}
    return seen.encode()


def echo_answer_on(target: str, kind: Kind, token: str | None) -> bytes:
    """:func:`echo_answer` on a new channel to ``target`` (for callers in another thread)."""
    with grpc.insecure_channel(target) as channel:
        return echo_answer(channel, kind, token)
