"""``bearer-grpc token issue|verify|revoke`` against a served ``bearer-grpc serve`` process."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bearer_grpc.service.admin import Admin
from bearer_grpc.store import open_store, sqlite_url
from tests.cli._support import help_text, secret_of
from tests.harness import (
    SERVING,
    Cli,
    ServeProcess,
    assert_one_line_error,
    describe,
    health_status,
    running_server,
    wait_until,
)

pytestmark = pytest.mark.process

PASSWORD = "correct horse battery"
REFRESH_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_names = itertools.count()


@dataclass
class Served:
    """The module's server and a CLI pointed at it (same directory, so same data dir)."""

    server: ServeProcess
    cli: Cli

    def client(
        self,
        scopes: tuple[str, ...] = ("orders.read", "orders.write"),
        audiences: tuple[str, ...] = ("orders", "billing"),
    ) -> tuple[str, str]:
        """A new client: (client_id, client_secret). Added through the Python API for speed:
        ``clients add`` itself is tested in test_admin."""
        name = f"svc-{next(_names)}"
        store = open_store(sqlite_url(self.cli.cwd / "bearer-grpc-data"))
        try:
            new = Admin(store).add_client(name, scopes=scopes, audiences=audiences)
        finally:
            store.close()
        return new.client_id, new.client_secret

    def issue(self, client: tuple[str, str], *args: str) -> str:
        """An access token for ``client`` (secret from the environment)."""
        env = {"BEARER_GRPC_CLIENT_SECRET": client[1]}
        result = self.cli.ok("token", "issue", "--client-id", client[0], *args, env=env)
        return result.stdout.strip()

    def verify(self, token: str, *args: str, audience: str = "orders") -> tuple[int, str]:
        """(exit status, stdout) of ``token verify``."""
        result = self.cli("token", "verify", "--audience", audience, *args, input=token + "\n")
        assert "Traceback" not in result.stderr, describe(result)
        return result.returncode, result.stdout.strip()

    def jti(self, token: str) -> str:
        """The token's ``jti`` claim, read without verification."""
        jti: str = _jwt_part(token, 1)["jti"]
        return jti

    def claims(self, token: str) -> dict[str, object]:
        """The verified claims of an active token (``token verify --json``)."""
        result = self.cli.ok("token", "verify", "--audience", "orders", "--json", input=token)
        data: dict[str, object] = json.loads(result.stdout)
        return data


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One ``bearer-grpc serve`` for the module, on a fresh data dir."""
    directory = tmp_path_factory.mktemp("token-commands")
    with running_server(directory) as server:
        yield Served(server, Cli(directory, env={"BEARER_GRPC_TARGET": server.target}))


def _jwt_part(token: str, index: int) -> dict[str, Any]:
    segment = token.split(".")[index]
    part: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return part


def _jwt_header(token: str) -> dict[str, Any]:
    return _jwt_part(token, 0)


# -- issue ---------------------------------------------------------------------------------


def test_issue_secret_from_env(served: Served) -> None:
    token = served.issue(served.client())
    assert token.count(".") == 2 and "\n" not in token
    assert _jwt_header(token)["typ"] == "at+jwt"


@pytest.mark.process
def test_issue_secret_from_stdin(served: Served) -> None:
    client_id, secret = served.client()
    result = dataclasses.replace(served.cli, process=True).ok(
        "token", "issue", "--client-id", client_id, input=secret + "\n"
    )
    assert _jwt_part(result.stdout.strip(), 1)["sub"] == client_id


def test_issue_json(served: Served) -> None:
    client_id, secret = served.client()
    result = served.cli.ok(
        "token", "issue", "--client-id", client_id, "--json", "--scopes", "orders.read",
        "--audience", "billing", env={"BEARER_GRPC_CLIENT_SECRET": secret},
    )  # fmt: skip
    data = json.loads(result.stdout)
    assert {"access_token", "token_type", "expires_in", "scopes"} <= set(data)
    assert "refresh_token" not in data  # client credentials get no refresh token
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 900
    assert data["scopes"] == ["orders.read"]
    claims = _jwt_part(data["access_token"], 1)
    assert (claims["aud"], claims["scope"]) == ("billing", "orders.read")


def test_issue_scope_not_allowed(served: Served) -> None:
    client_id, secret = served.client()
    result = served.cli(
        "token", "issue", "--client-id", client_id, "--scopes", "admin",
        env={"BEARER_GRPC_CLIENT_SECRET": secret},
    )  # fmt: skip
    assert "PERMISSION_DENIED" in assert_one_line_error(result)


def test_wrong_secret_and_unknown_client_look_alike(served: Served) -> None:
    client_id, secret = served.client()
    wrong = "x" * 43
    bad_secret = served.cli(
        "token", "issue", "--client-id", client_id, env={"BEARER_GRPC_CLIENT_SECRET": wrong}
    )
    unknown = served.cli(
        "token", "issue", "--client-id", "no-such-client", env={"BEARER_GRPC_CLIENT_SECRET": secret}
    )
    line = assert_one_line_error(bad_secret)
    assert "UNAUTHENTICATED" in line
    assert assert_one_line_error(unknown) == line
    assert wrong not in line and secret not in line


def test_issue_without_secret(served: Served) -> None:
    client_id, _ = served.client()
    assert_one_line_error(served.cli("token", "issue", "--client-id", client_id, input=""))


def test_removed_client_is_refused_at_once(served: Served) -> None:
    """README: "a running server sees the change at once (clients, users)"."""
    client_id, secret = served.client()
    served.cli.ok("clients", "remove", client_id)
    result = served.cli(
        "token", "issue", "--client-id", client_id, env={"BEARER_GRPC_CLIENT_SECRET": secret}
    )
    assert "UNAUTHENTICATED" in assert_one_line_error(result)


# -- verify and revoke ---------------------------------------------------------------------


def test_verify_then_revoke_by_value(served: Served) -> None:
    token = served.issue(served.client())
    status, out = served.verify(token, "--scopes", "orders.read")
    assert status == 0
    assert out.startswith("active: ")
    claims = served.claims(token)
    assert claims["active"] is True
    assert claims["audience"] == ["orders"]
    assert claims["scopes"] == ["orders.read", "orders.write"]

    result = served.cli.ok("token", "revoke", input=token + "\n")
    assert result.stdout.strip() == "revoked"
    assert served.verify(token) == (1, "inactive: TOKEN_REVOKED")
    again = served.cli.ok("token", "revoke", env={"BEARER_GRPC_TOKEN": token})  # idempotent
    assert again.stdout.strip() == "revoked"


def test_verify_insufficient_scope(served: Served) -> None:
    token = served.issue(served.client(), "--scopes", "orders.read")
    assert served.verify(token, "--scopes", "orders.write") == (1, "inactive: INSUFFICIENT_SCOPE")


def test_verify_json_inactive(served: Served) -> None:
    result = served.cli("token", "verify", "--audience", "orders", "--json", input="not-a-token")
    assert result.returncode == 1, describe(result)
    data = json.loads(result.stdout)
    assert data["active"] is False
    assert data["reason"] in {"TOKEN_MALFORMED", "TOKEN_INVALID"}


def test_revoke_by_token_id_as_admin(served: Served) -> None:
    admin = served.client(scopes=("bearer-grpc:admin",), audiences=("bearer-grpc",))
    admin_token = served.issue(admin)
    victim = served.issue(served.client())
    jti = served.jti(victim)
    result = served.cli.ok(
        "token", "revoke", "--token-id", jti, env={"BEARER_GRPC_TOKEN": admin_token}
    )
    assert result.stdout.strip() == "revoked"
    assert served.verify(victim) == (1, "inactive: TOKEN_REVOKED")


def test_revoke_by_token_id_without_admin_scope(served: Served) -> None:
    caller = served.issue(served.client())
    victim = served.issue(served.client())
    jti = served.jti(victim)
    result = served.cli("token", "revoke", "--token-id", jti, env={"BEARER_GRPC_TOKEN": caller})
    line = assert_one_line_error(result)
    assert "PERMISSION_DENIED" in line
    assert caller not in line
    assert served.verify(victim)[0] == 0


def test_revoke_own_token_by_id(served: Served) -> None:
    token = served.issue(served.client())
    jti = served.jti(token)
    served.cli.ok("token", "revoke", "--token-id", jti, env={"BEARER_GRPC_TOKEN": token})
    assert served.verify(token) == (1, "inactive: TOKEN_REVOKED")


# -- people: password and refresh grants ------------------------------------------------------


@pytest.fixture(scope="module")
def alice(served: Served) -> str:
    """A user (password hashing is slow: one user for the module)."""
    served.cli.ok(
        "users", "add", "alice", "--scopes", "orders.read", "--audiences", "orders", input=PASSWORD
    )
    return "alice"


def _login(served: Served, user: str, **kwargs: object) -> dict[str, object]:
    result = served.cli.ok("token", "issue", "--username", user, "--json", **kwargs)  # type: ignore[arg-type]
    data: dict[str, object] = json.loads(result.stdout)
    return data


def _refresh(served: Served, refresh_token: object) -> dict[str, object]:
    assert isinstance(refresh_token, str)
    result = served.cli.ok("token", "issue", "--refresh", "--json", input=refresh_token + "\n")
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_password_login_then_refresh_rotates(served: Served, alice: str) -> None:
    first = _login(served, alice, input=PASSWORD + "\n")
    assert isinstance(first["refresh_token"], str)
    assert REFRESH_TOKEN.fullmatch(first["refresh_token"])
    assert isinstance(first["access_token"], str)

    second = _refresh(served, first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]

    env = {"BEARER_GRPC_REFRESH_TOKEN": str(second["refresh_token"])}
    third = json.loads(served.cli.ok("token", "issue", "--refresh", "--json", env=env).stdout)
    assert third["refresh_token"] != second["refresh_token"]

    # README: presenting a rotated one again revokes the whole family and its access tokens
    reuse = served.cli("token", "issue", "--refresh", input=str(first["refresh_token"]))
    assert "UNAUTHENTICATED" in assert_one_line_error(reuse)
    assert_one_line_error(served.cli("token", "issue", "--refresh", input=third["refresh_token"]))
    assert served.verify(third["access_token"]) == (1, "inactive: TOKEN_REVOKED")


def test_password_from_env_and_wrong_password(served: Served, alice: str) -> None:
    data = _login(served, alice, env={"BEARER_GRPC_PASSWORD": PASSWORD})
    assert "refresh_token" in data
    plain = served.cli.ok("token", "issue", "--username", alice, input=PASSWORD)
    assert plain.stdout.strip().count(".") == 2  # the access token alone
    wrong = served.cli("token", "issue", "--username", alice, input="wrong password")
    line = assert_one_line_error(wrong)
    assert "UNAUTHENTICATED" in line and "wrong password" not in line


def test_revoke_refresh_token_by_value(served: Served, alice: str) -> None:
    login = _login(served, alice, input=PASSWORD)
    served.cli.ok("token", "revoke", input=str(login["refresh_token"]))
    refused = served.cli("token", "issue", "--refresh", input=str(login["refresh_token"]))
    assert_one_line_error(refused)
    assert isinstance(login["access_token"], str)
    assert served.verify(login["access_token"]) == (1, "inactive: TOKEN_REVOKED")


# -- keys seen by the running server -----------------------------------------------------------


def test_rotation_reaches_the_running_server(served: Served) -> None:
    client = served.client()
    before = served.issue(client)
    old_kid = _jwt_header(before)["kid"]
    keys = json.loads(served.cli.ok("keys", "list", "--json").stdout)
    newest = max(k["not_before"] for k in keys)
    # rotate --delay 0 in a later second than the last key
    wait_until(lambda: time.time() >= newest + 1, timeout=3, interval=0.02)
    new_kid = json.loads(served.cli.ok("keys", "rotate", "--delay", "0", "--json").stdout)["kid"]
    assert new_kid != old_kid

    deadline = time.monotonic() + 10  # the server picks keys up on its next sync (1 s)
    while _jwt_header(served.issue(client))["kid"] != new_kid:
        assert time.monotonic() < deadline, "the server never signed with the new key"
    assert served.verify(before)[0] == 0  # the old key stays published


# -- failures ------------------------------------------------------------------------------


@pytest.mark.process
@pytest.mark.parametrize("action", ["issue", "verify", "revoke"])
def test_server_unreachable(process_cli: Cli, action: str) -> None:
    args = {
        "issue": ("--client-id", "svc"),
        "verify": ("--audience", "orders"),
        "revoke": (),
    }[action]
    secret = "s" * 43
    result = process_cli(
        "token", action, *args, "--target", "127.0.0.1:1",
        env={"BEARER_GRPC_CLIENT_SECRET": secret, "BEARER_GRPC_TOKEN": secret},
    )  # fmt: skip
    line = assert_one_line_error(result)
    assert "UNAVAILABLE" in line
    assert secret not in line


@pytest.mark.parametrize(
    ("args", "forbidden"),
    [
        (("token", "issue"), {"--client-secret", "--secret", "--password", "--refresh-token"}),
        (("token", "verify"), {"--token"}),
        (("token", "revoke"), {"--token"}),
        (("users", "add"), {"--password"}),
    ],
)
def test_secrets_have_no_flags(args: tuple[str, ...], forbidden: set[str]) -> None:
    flags = set(re.findall(r"--[a-z][a-z-]*", help_text(*args)))
    assert flags  # the help was parsed
    assert not flags & forbidden


def test_server_logs_carry_no_secrets(served: Served, alice: str) -> None:
    client_id, secret = served.client()
    token = served.issue((client_id, secret))
    login = _login(served, alice, input=PASSWORD)
    served.verify(token)
    served.cli("token", "issue", "--client-id", client_id, input="wrong-" + secret)
    served.cli.ok("token", "revoke", input=token)
    log = served.server.stderr()
    assert '"method":"RevokeToken"' in log
    for value in (secret, token, PASSWORD, str(login["access_token"]), str(login["refresh_token"])):
        assert value not in log


def test_staged_key_before_first_start(tmp_path: Path) -> None:
    """``keys rotate --delay 3600`` on a fresh data dir, then the first ``serve``.

    README: keys are "generated on first start"; the server must still be able to sign.
    """
    cli = Cli(tmp_path)
    cli.ok("keys", "rotate", "--delay", "3600")
    client = secret_of(cli.ok("clients", "add", "svc", "--audiences", "orders", "--json"))
    with running_server(tmp_path) as server:
        assert health_status(server.target) == SERVING
        result = cli(
            "token", "issue", "--client-id", "svc", "--target", server.target,
            env={"BEARER_GRPC_CLIENT_SECRET": client},
        )  # fmt: skip
        assert result.returncode == 0, describe(result)
