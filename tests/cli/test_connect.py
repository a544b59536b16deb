"""Which channel the commands that talk to a server open: tokens, client secrets and new
credentials cross it, so only a target on this host gets plaintext unless asked."""

from __future__ import annotations

import argparse

import pytest

from bearer_grpc.cli import build_parser
from bearer_grpc.cli._connect import is_local, uses_tls


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


@pytest.mark.parametrize(
    "command",
    [
        ("token", "verify", "--audience", "orders"),
        ("token", "issue", "--client-id", "svc"),
        ("clients", "list"),
    ],
)
def test_token_and_admin_commands_share_the_rule(command: tuple[str, ...]) -> None:
    parser = build_parser(command[0])
    remote = parser.parse_args([*command, "--target", "auth.example.com:443"])
    assert uses_tls(remote)
    insisted = parser.parse_args([*command, "--target", "auth.example.com:443", "--plaintext"])
    assert not uses_tls(insisted)
