"""Tokens bound by another RFC 8705 server: oidc-provider (npm) with
``features.mTLS.certificateBoundAccessTokens``, over an HTTPS listener that asks for
client certificates, checked by ``Verifier.from_issuer`` (JWTs) and
``Verifier.introspection`` (opaque tokens) behind both interceptors.

The token is requested over mutual TLS with alice's certificate, so oidc-provider binds
it to that certificate (its own ``x5t#S256``, which must equal ours). Then only alice's
connection may use it.
"""

from __future__ import annotations

import json
import selectors
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt
import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc import Policy
from bearer_grpc.testing import METHODS, LoopThread, bearer, path
from tests.bound._servers import (
    BOUND_SERVICE,
    Server,
    answer,
    ask,
    bound_path,
    running,
)
from tests.harness import Identity, Pki, refusal

pytestmark = pytest.mark.process

HERE = Path(__file__).resolve().parent
ORDERS = "https://orders.test"
POLICY = Policy(certificate_bound=[f"/{BOUND_SERVICE}/*"])


@dataclass(frozen=True)
class Provider:
    """A running oidc-provider: its issuer URL and the CA file that trusts it."""

    issuer: str
    ca_file: Path

    def token(
        self, client_id: str, client: Identity | None, folder: Path, resource: str = ORDERS
    ) -> httpx.Response:
        """Ask for a token by client_credentials, over mTLS as ``client`` if given."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if client is not None:
            cert, key = folder / "client.pem", folder / "client.key"
            cert.write_bytes(client.cert_pem)
            key.write_bytes(client.key_pem)
            context.load_cert_chain(cert, key)
        form = {"grant_type": "client_credentials", "resource": resource, "scope": "orders.read"}
        return httpx.post(
            f"{self.issuer}/token",
            data=form,
            auth=_credentials(client_id),
            verify=context,
            timeout=10,
        )


def _credentials(client_id: str) -> tuple[str, str]:
    return client_id, f"{client_id}-secret-0123456789abcdef0123456789abcdef"


@contextmanager
def _running(pki: Pki, folder: Path) -> Iterator[Provider]:
    files = {"ca.pem": pki.ca_pem, "server.pem": pki.server.cert_pem}
    files["server.key"] = pki.server.key_pem
    for name, content in files.items():
        (folder / name).write_bytes(content)
    args = [str(folder / name) for name in ("server.pem", "server.key", "ca.pem")]
    process = subprocess.Popen(
        ["node", str(HERE / "provider_mtls.mjs"), *args],
        cwd=HERE.parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(30), "oidc-provider did not start"
        started = process.stdout.readline()
        assert started, f"oidc-provider exited: {process.wait()}"
        yield Provider(json.loads(started)["issuer"], folder / "ca.pem")
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="module")
def provider(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """oidc-provider on loopback (skipped where node is missing)."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    with _running(pki, tmp_path_factory.mktemp("oidc-provider")) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(
    provider: Provider, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """JWTs bound to alice's certificate and unbound, and a bound opaque token."""
    folder = tmp_path_factory.mktemp("client")
    alice = pki.clients["alice"]
    answers = {
        "bound": provider.token("bound-svc", alice, folder),
        "plain": provider.token("plain-svc", alice, folder),
        "opaque": provider.token("bound-svc", alice, folder, resource="urn:opaque"),
    }
    return {name: answer.json()["access_token"] for name, answer in answers.items()}


def test_the_provider_binds_its_token_to_our_thumbprint(
    provider: Provider, tokens: dict[str, str], pki: Pki, tmp_path: Path
) -> None:
    claims = jwt.decode(tokens["bound"], options={"verify_signature": False})
    assert claims["cnf"] == {"x5t#S256": pki.clients["alice"].x5t}
    assert "cnf" not in jwt.decode(tokens["plain"], options={"verify_signature": False})
    # and refuses a bound client that presents no certificate
    assert provider.token("bound-svc", None, tmp_path).status_code == 400


def _check(server: Server, tokens: dict[str, str]) -> None:
    bound, plain = bearer(tokens["bound"]), bearer(tokens["plain"])
    for kind, name in METHODS.items():
        for method in (path(name), bound_path(name)):
            said = ask(server.channels["alice"], kind, method, bound)
            assert said == answer(kind, "bound-svc", ("orders.read",))
            for thief in ("mallory", "plaintext"):
                error = refusal(lambda: ask(server.channels[thief], kind, method, bound))  # noqa: B023
                assert error.code() is grpc.StatusCode.UNAUTHENTICATED
                assert error.details() in {
                    "token bound to another certificate",
                    "client certificate required",
                }
        said = ask(server.channels["plaintext"], kind, path(name), plain)
        assert said == answer(kind, "plain-svc", ("orders.read",))
        error = refusal(lambda: ask(server.channels["alice"], kind, bound_path(name), plain))  # noqa: B023
        assert error.details() == "certificate-bound token required"


def test_sync_interceptor_enforces_the_providers_binding(
    provider: Provider, tokens: dict[str, str], pki: Pki, loop: LoopThread
) -> None:
    with (
        bearer_grpc.Verifier.from_issuer(
            provider.issuer, audience=ORDERS, ca_file=str(provider.ca_file)
        ) as verifier,
        running("sync", verifier, pki, loop, POLICY) as server,
    ):
        _check(server, tokens)


def test_aio_interceptor_enforces_the_providers_binding(
    provider: Provider, tokens: dict[str, str], pki: Pki, loop: LoopThread
) -> None:
    async def make() -> Any:
        return bearer_grpc.aio.Verifier.from_issuer(
            provider.issuer, audience=ORDERS, ca_file=str(provider.ca_file)
        )

    verifier = loop.run(make())
    try:
        with running("aio", verifier, pki, loop, POLICY) as server:
            _check(server, tokens)
    finally:
        loop.run(verifier.aclose())


@pytest.mark.parametrize("flavour", ["sync", "aio"])
def test_an_introspected_bound_token_is_enforced(
    flavour: str, provider: Provider, tokens: dict[str, str], pki: Pki, loop: LoopThread
) -> None:
    """RFC 8705 §3.2: the introspection answer carries the token's ``cnf``."""
    module: Any = bearer_grpc if flavour == "sync" else bearer_grpc.aio
    client_id, client_secret = _credentials("orders-api")

    async def make() -> Any:
        return module.Verifier.introspection(
            f"{provider.issuer}/token/introspection",
            client_id=client_id,
            client_secret=client_secret,
            audience="urn:opaque",
            ca_file=str(provider.ca_file),
        )

    verifier = loop.run(make())
    opaque = bearer(tokens["opaque"])
    try:
        with running(flavour, verifier, pki, loop) as server:
            said = ask(server.channels["alice"], "unary_unary", path("Unary"), opaque)
            assert said == answer("unary_unary", "bound-svc", ("orders.read",))
            error = refusal(
                lambda: ask(server.channels["mallory"], "unary_unary", path("Unary"), opaque)
            )
            assert error.details() == "token bound to another certificate"
    finally:
        if flavour == "aio":
            loop.run(verifier.aclose())
        else:
            verifier.close()
