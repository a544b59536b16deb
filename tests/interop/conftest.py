"""Protected example servers for clients bearer_grpc did not write.

The example OrdersService (examples/server.py and examples/server_aio.py, their policy and
``create_server``) with tokens from a :class:`~bearer_grpc.testing.TestIssuer`, each
server listening on three ports of 127.0.0.1: plaintext, local credentials
(``grpc.local_server_credentials``) and TLS with a throwaway certificate for ``localhost``
and ``127.0.0.1`` (tests.harness's PKI). One sync and one asyncio server serve the whole session.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from bearer_grpc.testing import TestIssuer
from tests.harness import REPO, LoopThread, load_example
from tests.interop._support import AUDIENCE, SERVER_KINDS, Ports, Tls, server_tls


@pytest.fixture(scope="session")
def issuer() -> TestIssuer:
    """Signs the tokens every interop server trusts."""
    return TestIssuer()


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """The servers' TLS certificate and key, and the CA the clients trust."""
    return server_tls(tmp_path_factory.mktemp("tls"))


def _add_ports(server: Any, kind: str, tls: Tls) -> Ports:
    local = grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    secure = grpc.ssl_server_credentials([(tls.key, tls.cert)])
    return Ports(
        kind,
        plaintext=server.add_insecure_port("127.0.0.1:0"),
        local=server.add_secure_port("127.0.0.1:0", local),
        tls=server.add_secure_port("127.0.0.1:0", secure),
    )


@pytest.fixture(scope="session")
def sync_server(issuer: TestIssuer, tls: Tls) -> Iterator[Ports]:
    """examples/server.py's service on a sync ``grpc.server``."""
    example = load_example("server")
    server = example.create_server(issuer.verifier(audience=AUDIENCE))
    ports = _add_ports(server, "sync", tls)
    server.start()
    try:
        yield ports
    finally:
        server.stop(None).wait()


@pytest.fixture(scope="session")
def aio_server(issuer: TestIssuer, tls: Tls) -> Iterator[Ports]:
    """examples/server_aio.py's service on a ``grpc.aio`` server, in a loop thread."""
    example = load_example("server_aio")
    loop = LoopThread()

    async def start() -> tuple[Any, Ports]:
        server = example.create_server(issuer.aio_verifier(audience=AUDIENCE))
        ports = _add_ports(server, "aio", tls)
        await server.start()
        return server, ports

    try:
        server, ports = loop.run(start())
        try:
            yield ports
        finally:
            loop.run(server.stop(None))
    finally:
        loop.close()


@pytest.fixture(params=SERVER_KINDS)
def protected(request: pytest.FixtureRequest) -> Ports:
    """Each protected server in turn."""
    ports: Ports = request.getfixturevalue(f"{request.param}_server")
    return ports


NODE_PACKAGES = ("@grpc/grpc-js", "@grpc/proto-loader", "protobufjs")
NPM_CI_TIMEOUT = 300.0


def _missing_packages() -> list[str]:
    return [p for p in NODE_PACKAGES if not (REPO / "node_modules" / p / "package.json").is_file()]


@pytest.fixture(scope="module")
def node() -> str:
    """The ``node`` executable, with the npm devDependencies installed."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Node interop client cannot run")
    if _missing_packages():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip(f"node_modules lacks {_missing_packages()} and npm is not installed")
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT,
            check=False,
        )
        if result.returncode != 0 or _missing_packages():
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
            pytest.skip(f"npm ci could not install {_missing_packages()}:\n{tail}")
    return node
