"""``bearer-grpc serve --http-listen`` as an operator runs it: the issuer must be a URL,
HTTPS comes from the gRPC port's certificate flags, and an address already taken stops
the start cleanly."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import httpx
import pytest

from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.http import HttpLimits
from bearer_grpc.service.server import ServeConfig, TokenServer
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import open_store, sqlite_url
from tests.harness import Cli, LoopThread, free_port, make_pki, running_server

pytestmark = pytest.mark.process


@pytest.mark.parametrize(
    "issuer", ["bearer-grpc", "http://tokens.example", "https://tokens.example/"]
)
def test_the_issuer_must_be_a_url_for_the_http_face(
    process_cli: Cli, tmp_path: Path, issuer: str
) -> None:
    done = process_cli(
        "serve",
        "--data-dir",
        str(tmp_path / "d"),
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--issuer",
        issuer,
    )
    assert done.returncode == 1
    assert "--issuer" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "d").exists()  # refused before touching the store


def test_https_with_the_certificate_flags(tmp_path: Path) -> None:
    pki = make_pki()
    cert, key = pki.server.write(tmp_path, "server")
    ca = pki.write_ca(tmp_path)
    port = free_port()
    issuer = f"https://localhost:{port}"
    args = ["--data-dir", str(tmp_path / "d"), "--http-listen", f"127.0.0.1:{port}"]
    tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
    with running_server(tmp_path, *args, "--issuer", issuer, *tls) as server:
        assert any(record.get("message") == "http listening" for record in server.records())
        with httpx.Client(verify=ssl.create_default_context(cafile=ca), timeout=10) as client:
            document = client.get(f"{issuer}/.well-known/openid-configuration").json()
        assert document["jwks_uri"] == f"{issuer}/jwks"
        with pytest.raises(httpx.HTTPError), httpx.Client(timeout=5) as plain:
            plain.get(f"http://127.0.0.1:{port}/jwks")
        assert server.stop() == 0


def test_an_http_address_in_use_stops_the_start_cleanly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        store = open_store(sqlite_url(tmp_path / "d"))
        authority = TokenAuthority(store, ServiceSettings(issuer=f"http://127.0.0.1:{port}"))
        config = ServeConfig(
            listen="127.0.0.1:0", http_listen=f"127.0.0.1:{port}", http_limits=HttpLimits()
        )
        server = TokenServer(authority, config)
        loop = LoopThread()
        try:
            with pytest.raises(ValueError, match="cannot listen for HTTP"):
                loop.run(server.start())
            loop.run(server.stop(grace=0))
        finally:
            loop.run(loop.loop.shutdown_default_executor())
            loop.close()
            store.close()
