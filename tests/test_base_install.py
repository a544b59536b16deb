"""A protected service installs bearer-grpc without the TokenService's dependencies.

A fresh virtual environment gets the project without extras (``pip install PATH``, from
pip's cache where it can). In it, a program protects a real sync ``grpc.server`` and
finds none of the ``server`` extra's modules; ``bearer-grpc serve`` says what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bearer_grpc.cli import SERVER_EXTRA_HINT, SERVER_EXTRA_MODULES

pytestmark = [pytest.mark.slow, pytest.mark.process, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT = 480.0
RUN_TIMEOUT = 60.0

PROTECTED_SERVICE = textwrap.dedent(
    """
    import importlib.util
    import sys
    from concurrent import futures

    import grpc

    import bearer_grpc
    from bearer_grpc.testing import TestIssuer

    issuer = TestIssuer()
    verifier = bearer_grpc.Verifier.from_jwks(
        issuer.jwks, issuer=issuer.issuer, audience="orders"
    )
    policy = bearer_grpc.Policy(scopes={"/test.Orders/*": ["orders.read"]})

    def get(request, context):
        return bearer_grpc.current_principal().subject.encode()

    handler = grpc.method_handlers_generic_handler(
        "test.Orders", {"Get": grpc.unary_unary_rpc_method_handler(get)}
    )
    with futures.ThreadPoolExecutor(max_workers=2) as pool:
        server = grpc.server(
            pool,
            handlers=[handler],
            interceptors=[bearer_grpc.BearerServerInterceptor(verifier, policy)],
        )
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_unary("/test.Orders/Get")
                token = issuer.token(subject="svc", scopes=["orders.read"], audience="orders")
                answer = call(b"", metadata=[("authorization", f"Bearer {token}")], timeout=10)
                assert answer == b"svc", answer
                try:
                    call(b"", timeout=10)
                except grpc.RpcError as err:
                    assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err
                else:
                    raise AssertionError("a call without a token was accepted")
        finally:
            server.stop(None).wait()

    loaded = sorted(name for name in sys.argv[1:] if name in sys.modules)
    installed = sorted(name for name in sys.argv[1:] if importlib.util.find_spec(name))
    assert not loaded and not installed, (loaded, installed)
    try:
        import sqlalchemy
    except ImportError:
        print("protected without the server extra")
    """
)


def _env() -> dict[str, str]:
    """Our environment without anything that would let the new venv see our packages."""
    return {
        k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    }


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv holding bearer-grpc without extras; returns its ``bin`` directory."""
    root = tmp_path_factory.mktemp("base-install")
    source = root / "src"  # a copy, so that building leaves nothing in the repository
    shutil.copytree(
        REPO / "bearer_grpc", source / "bearer_grpc", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=_env())
    subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "--quiet", str(source)],
        check=True,
        env=_env(),
        timeout=INSTALL_TIMEOUT,
    )
    return venv / "bin"


def test_a_sync_server_is_protected_without_the_server_extra(base_venv: Path) -> None:
    result = subprocess.run(
        [base_venv / "python", "-c", PROTECTED_SERVICE, *sorted(SERVER_EXTRA_MODULES)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "protected without the server extra"


def test_serve_without_the_server_extra_says_what_to_install(base_venv: Path) -> None:
    result = subprocess.run(
        [base_venv / "bearer-grpc", "serve"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode != 0
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("bearer-grpc: error: ") and line.endswith(SERVER_EXTRA_HINT), line


def test_token_commands_work_without_the_server_extra(base_venv: Path) -> None:
    for args in (["--version"], ["--help"], ["token", "issue", "--help"]):
        result = subprocess.run(
            [base_venv / "bearer-grpc", *args],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=RUN_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, (args, result.stderr)
