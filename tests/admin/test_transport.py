"""Which channel the remote admin commands open: admin tokens, client secrets and new
credentials cross it, so only a target on this host gets plaintext unless asked."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bearer_grpc.cli._remote import is_local, uses_tls
from tests.admin.conftest import Modes
from tests.harness import assert_one_line_error, pki_files


def _args(target: str, *, plaintext: bool = False, ca: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(
        target=target, plaintext=plaintext, tls_ca=ca, tls_client_cert=None, tls_client_key=None
    )


@pytest.mark.parametrize(
    "target",
    ["127.0.0.1:50051", "localhost:50051", "[::1]:50051", "ipv4:127.0.0.1:1", "unix:/tmp/s"],
)
def test_a_target_on_this_host_is_local(target: str) -> None:
    assert is_local(target)
    assert not uses_tls(_args(target))


@pytest.mark.parametrize(
    "target",
    ["admin.example.com:443", "10.0.0.5:50051", "[2001:db8::1]:443", "dns:///auth.internal:443"],
)
def test_any_other_target_gets_tls_unless_plaintext_insists(target: str) -> None:
    assert not is_local(target)
    assert uses_tls(_args(target))
    assert not uses_tls(_args(target, plaintext=True))


def test_tls_options_always_mean_tls() -> None:
    assert uses_tls(_args("127.0.0.1:50051", ca="ca.pem"))


def test_plaintext_with_tls_options_is_refused() -> None:
    with pytest.raises(ValueError, match="--plaintext"):
        uses_tls(_args("admin.example.com:443", plaintext=True, ca="ca.pem"))


def test_localhost_reaches_a_plaintext_server(modes: Modes) -> None:
    port = modes.target.rpartition(":")[2]
    out = modes.cli.ok("clients", "list", "--target", f"localhost:{port}", env=modes.env)
    assert "ops" in out.stdout


def test_tls_options_are_not_dropped_for_a_local_target(modes: Modes, tmp_path: Path) -> None:
    """With ``--tls-ca`` the command speaks TLS, which the plaintext server cannot answer."""
    ca = pki_files(tmp_path).ca
    args = ("clients", "list", "--target", modes.target, "--tls-ca", str(ca))
    result = modes.cli(*args, env=modes.env)
    assert "UNAVAILABLE" in assert_one_line_error(result)


def test_plaintext_with_tls_options_is_one_line(modes: Modes, tmp_path: Path) -> None:
    ca = pki_files(tmp_path).ca
    result = modes.cli(
        "clients", "list", "--target", modes.target, "--plaintext", "--tls-ca", str(ca),
        env=modes.env,
    )  # fmt: skip
    assert "--plaintext" in assert_one_line_error(result)
