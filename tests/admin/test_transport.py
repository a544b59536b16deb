"""The channel the remote admin commands open, against a real plaintext server: a local
target is reached in plaintext, TLS options are never dropped (the rule itself:
tests/cli/test_connect.py)."""

from __future__ import annotations

from pathlib import Path

from tests.admin.conftest import Modes
from tests.harness import assert_one_line_error, pki_files


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
