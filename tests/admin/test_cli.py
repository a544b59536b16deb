"""The admin commands print the same on the store and through the AdminService
(``--target``), ``--json`` included; remote ones authenticate from the environment and
print no secret but a new client's, once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bearer_grpc.store import sqlite_url
from tests.admin.conftest import PASSWORD, Modes, bootstrap_admin
from tests.harness import (
    Cli,
    assert_one_line_error,
    running_server,
)


def _populate(modes: Modes) -> None:
    modes.direct("clients", "add", "svc-a", "--scopes", "a,b", "--audiences", "orders")
    modes.remote("clients", "add", "svc-b", "--audiences", "orders,billing")
    modes.direct("users", "add", "alice", "--audiences", "orders", input=PASSWORD + "\n")
    modes.remote("users", "add", "bob", "--audiences", "orders", input=PASSWORD + "\n")
    modes.remote("keys", "rotate", "--delay", "3600")


@pytest.mark.parametrize(
    "command",
    [
        ("clients", "list"),
        ("users", "list"),
        ("keys", "list"),
        ("audit", "list"),
    ],
    ids=lambda c: " ".join(c),
)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_listings_print_the_same_both_ways(
    modes: Modes, command: tuple[str, ...], as_json: bool
) -> None:
    _populate(modes)
    args = (*command, "--json") if as_json else command
    direct, remote = modes.direct(*args), modes.remote(*args)
    assert direct == remote
    assert direct.strip() and direct.strip() != "(none)"
    assert modes.env["BEARER_GRPC_CLIENT_SECRET"] not in remote


def _shape(text: str) -> str:
    """Output with its times and secrets blanked (they differ from one run to the next)."""
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", text)
    text = re.sub(r'"(not_before|old_secret_valid_until|created_at)": \d+', r'"\1": N', text)
    text = re.sub(r"[A-Za-z0-9_-]{43,}", "SECRET", text)
    return re.sub(r"-(direct|remote)\b", "", text)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_changes_print_the_same_both_ways(modes: Modes, as_json: bool) -> None:
    flag = ("--json",) if as_json else ()
    outputs: dict[str, list[str]] = {"direct": [], "remote": []}
    for mode in ("direct", "remote"):
        run = getattr(modes, mode)
        name = f"svc-{mode}"
        user = f"user-{mode}"
        steps = [
            (("clients", "add", name, "--audiences", "orders"), None),
            (("clients", "update", name, "--scopes", "x", "--audiences", "orders"), None),
            (("clients", "rotate-secret", name), None),
            (("clients", "revoke-all", name), None),
            (("clients", "remove", name), None),
            (("users", "add", user, "--audiences", "orders"), PASSWORD + "\n"),
            (("users", "set-password", user), PASSWORD + " changed\n"),
            (("users", "revoke", user), None),
            (("users", "remove", user), None),
        ]
        for args, stdin in steps:
            outputs[mode].append(_shape(run(*args, *flag, input=stdin)))
    assert outputs["direct"] == outputs["remote"]


def test_errors_print_the_same_both_ways(modes: Modes) -> None:
    for args in (
        ("clients", "remove", "nobody"),
        ("clients", "rotate-secret", "nobody"),
        ("users", "set-password", "nobody"),
        ("keys", "withdraw", "nope"),
        ("clients", "add", "ops", "--audiences", "x"),
        ("clients", "update", "ops", "--scopes", "bad scope!", "--audiences", "x"),
    ):
        direct = modes.cli(*args, "--store", modes.url, input=PASSWORD + "\n")
        remote = modes.cli(*args, "--target", modes.target, env=modes.env, input=PASSWORD + "\n")
        assert assert_one_line_error(direct) == assert_one_line_error(remote), args


def test_remote_rotation_keeps_the_old_secret_for_the_overlap(modes: Modes) -> None:
    made = json.loads(modes.remote("clients", "add", "svc", "--audiences", "orders", "--json"))
    rotated = json.loads(
        modes.remote("clients", "rotate-secret", "svc", "--old-secret-valid-for", "1h", "--json")
    )
    assert set(rotated) == {"client_id", "client_secret", "old_secret_valid_until"}
    assert rotated["client_secret"] != made["client_secret"]
    assert rotated["old_secret_valid_until"] > 0
    for secret in (made["client_secret"], rotated["client_secret"]):
        issued = modes.cli.ok(
            "token", "issue", "--client-id", "svc", "--target", modes.target,
            env={"BEARER_GRPC_CLIENT_SECRET": secret},
        )  # fmt: skip
        assert issued.stdout.strip()


def test_remote_with_an_admin_token_from_the_environment(modes: Modes) -> None:
    token = modes.cli.ok(
        "token", "issue", "--client-id", "ops", "--audience", "bearer-grpc",
        "--target", modes.target, env=modes.env,
    ).stdout.strip()  # fmt: skip
    listed = modes.cli.ok(
        "clients", "list", "--target", modes.target, env={"BEARER_GRPC_ADMIN_TOKEN": token}
    )
    assert "ops" in listed.stdout
    assert token not in listed.stdout + listed.stderr


def test_remote_without_credentials_is_one_line(modes: Modes) -> None:
    line = assert_one_line_error(modes.cli("clients", "list", "--target", modes.target))
    assert "BEARER_GRPC_ADMIN_TOKEN" in line


def test_remote_with_a_non_admin_client_is_refused(modes: Modes) -> None:
    made = json.loads(
        modes.direct("clients", "add", "plain", "--audiences", "bearer-grpc", "--json")
    )
    env = {
        "BEARER_GRPC_CLIENT_ID": "plain",
        "BEARER_GRPC_CLIENT_SECRET": made["client_secret"],
    }
    result = modes.cli("clients", "add", "x", "--audiences", "o", "--target", modes.target, env=env)
    assert "PERMISSION_DENIED" in assert_one_line_error(result)
    assert "x" not in modes.direct("clients", "list").split()


def test_the_admin_target_variable_selects_remote_mode(modes: Modes) -> None:
    env = {**modes.env, "BEARER_GRPC_ADMIN_TARGET": modes.target}
    via_variable = modes.cli.ok("audit", "list", "--json", env=env).stdout
    assert via_variable == modes.remote("audit", "list", "--json")
    # the token commands' variable leaves the admin commands on the store
    token_target = {"BEARER_GRPC_TARGET": "127.0.0.1:1", "BEARER_GRPC_DATA_DIR": "elsewhere"}
    assert modes.cli.ok("clients", "list", env=token_target).stdout == "(none)\n"


@pytest.mark.process
@pytest.mark.slow
def test_a_real_process_against_a_real_server_prints_as_on_the_store(tmp_path: Path) -> None:
    cli = Cli(tmp_path, process=True)
    data = tmp_path / "data"
    url = sqlite_url(data)
    env = bootstrap_admin(Cli(tmp_path), url)
    with running_server(tmp_path, "--data-dir", str(data)) as server:
        remote = cli.ok("clients", "list", "--json", "--target", server.target, env=env)
        direct = cli.ok("clients", "list", "--json", "--data-dir", str(data))
        assert remote.stdout == direct.stdout
        audit = cli.ok("audit", "list", "--json", "--target", server.target, env=env)
        server.stop()
    [key] = json.loads(cli.ok("keys", "list", "--json", "--data-dir", str(data)).stdout)
    assert [(e["actor"], e["action"], e["target"]) for e in json.loads(audit.stdout)] == [
        ("token service", "key.rotate", key["kid"]),  # the server's first key
        ("local CLI", "client.create", "ops"),
    ]
    assert env["BEARER_GRPC_CLIENT_SECRET"] not in server.stderr() + audit.stdout


NO_SERVER_EXTRA = """
import sys
from importlib.abc import MetaPathFinder

class Missing(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"sqlalchemy", "psycopg", "zxcvbn", "aiohttp"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Missing())
from bearer_grpc.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.process
def test_remote_commands_need_no_store_driver(modes: Modes, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.harness import clean_env

    done = subprocess.run(
        [sys.executable, "-c", NO_SERVER_EXTRA, "clients", "list", "--json",
         "--target", modes.target],
        env=clean_env(modes.env), cwd=tmp_path, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == modes.direct("clients", "list", "--json")
