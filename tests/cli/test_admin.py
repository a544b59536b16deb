"""``bearer-grpc clients|users|keys``: operator commands on the store, run as a real process."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import stat
import time
from importlib import metadata
from pathlib import Path

import pytest

from bearer_grpc.core.secrets import verify_password
from bearer_grpc.service.admin import Admin
from bearer_grpc.store import open_store, sqlite_url
from tests.cli._support import secret_of
from tests.harness import Cli, assert_one_line_error, running_server, wait_until

SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
DB = Path("bearer-grpc-data") / "bearer-grpc.db"
PASSWORD = "correct horse battery"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _accounts(db: Path) -> list[tuple[str, str, str]]:
    """(kind, name, credential_hash) of every client and user, read from the database file.

    The table is found by its columns, so that this white-box check survives renames.
    """
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            if {"kind", "name", "credential_hash"} <= columns:
                query = f"SELECT kind, name, credential_hash FROM {table}"  # noqa: S608
                return sorted(conn.execute(query).fetchall())
    raise AssertionError(f"no table of clients and users in {db}")


def _hashes(db: Path) -> list[str]:
    return [credential_hash for _kind, _name, credential_hash in _accounts(db)]


def _stored(db: Path) -> list[tuple[str, str]]:
    """(kind, name) of every client and user."""
    return [(kind, name) for kind, name, _hash in _accounts(db)]


def _names(cli: Cli, noun: str, *store: str) -> list[str]:
    result = cli.ok(noun, "list", "--json", *store)
    return [row["name"] for row in json.loads(result.stdout)]


@pytest.mark.process
def test_version(process_cli: Cli) -> None:
    result = process_cli.ok("--version")
    assert result.stdout.strip() == f"bearer-grpc {metadata.version('bearer-grpc')}"


# -- clients -------------------------------------------------------------------------------


def test_clients_add_prints_id_and_secret(cli: Cli) -> None:
    result = cli.ok("clients", "add", "svc", "--scopes", "a,b", "--audiences", "x")
    fields = dict(re.findall(r"^(client_id|client_secret):\s+(\S+)$", result.stdout, re.M))
    assert fields["client_id"] == "svc"
    assert SECRET.fullmatch(fields["client_secret"])


def test_clients_add_json(cli: Cli) -> None:
    result = cli.ok("clients", "add", "svc", "--scopes", "a,b", "--audiences", "x,y", "--json")
    data = json.loads(result.stdout)
    assert set(data) == {"client_id", "client_secret"}
    assert data["client_id"] == "svc"
    assert SECRET.fullmatch(data["client_secret"])


def test_clients_list_shows_no_secret_or_hash(cli: Cli, tmp_path: Path) -> None:
    secrets = [
        secret_of(
            cli.ok("clients", "add", "b-svc", "--scopes", "a,b", "--audiences", "x,y", "--json")
        ),
        secret_of(cli.ok("clients", "add", "a-svc", "--audiences", "z", "--json")),
    ]
    as_json = cli.ok("clients", "list", "--json").stdout
    rows = json.loads(as_json)
    assert [(r["name"], r["scopes"], r["audiences"]) for r in rows] == [
        ("a-svc", [], ["z"]),
        ("b-svc", ["a", "b"], ["x", "y"]),
    ]
    plain = cli.ok("clients", "list").stdout
    assert "a-svc" in plain and "b-svc" in plain
    hashes = _hashes(tmp_path / DB)
    assert len(hashes) == 2
    for output in (as_json, plain):
        for value in [*secrets, *hashes]:
            assert value not in output
        assert "secret" not in output.lower() and "hash" not in output.lower()


def test_clients_remove(cli: Cli, tmp_path: Path) -> None:
    cli.ok("clients", "add", "svc", "--audiences", "x")
    cli.ok("clients", "add", "keep", "--audiences", "x")
    cli.ok("clients", "remove", "svc")
    assert _stored(tmp_path / DB) == [("client", "keep")]
    line = assert_one_line_error(cli("clients", "remove", "svc"))
    assert "svc" in line


def test_clients_add_duplicate_name(cli: Cli, tmp_path: Path) -> None:
    cli.ok("clients", "add", "svc", "--audiences", "x")
    line = assert_one_line_error(cli("clients", "add", "svc", "--audiences", "y"))
    assert "svc" in line
    assert _stored(tmp_path / DB) == [("client", "svc")]


@pytest.mark.slow
def test_client_and_user_share_one_namespace(cli: Cli, tmp_path: Path) -> None:
    cli.ok("clients", "add", "taken-by-client", "--audiences", "x")
    assert_one_line_error(
        cli("users", "add", "taken-by-client", "--audiences", "x", input=PASSWORD + "\n")
    )
    cli.ok("users", "add", "taken-by-user", "--audiences", "x", input=PASSWORD + "\n")
    assert_one_line_error(cli("clients", "add", "taken-by-user", "--audiences", "x"))
    assert _stored(tmp_path / DB) == [("client", "taken-by-client"), ("user", "taken-by-user")]


# -- users ---------------------------------------------------------------------------------


@pytest.mark.process
def test_users_add_password_from_stdin(process_cli: Cli, tmp_path: Path) -> None:
    result = process_cli.ok("users", "add", "alice", "--audiences", "x", input=PASSWORD + "\n")
    assert PASSWORD not in result.stdout + result.stderr
    [stored] = _hashes(tmp_path / DB)
    assert verify_password(PASSWORD, stored)


@pytest.mark.slow
def test_users_add_password_from_env(cli: Cli, tmp_path: Path) -> None:
    result = cli.ok(
        "users", "add", "alice", "--audiences", "x", env={"BEARER_GRPC_PASSWORD": PASSWORD}
    )
    assert PASSWORD not in result.stdout + result.stderr
    [stored] = _hashes(tmp_path / DB)
    assert verify_password(PASSWORD, stored)


def test_users_add_short_password(cli: Cli, tmp_path: Path) -> None:
    line = assert_one_line_error(cli("users", "add", "alice", "--audiences", "x", input="short\n"))
    assert "short" not in line.removeprefix("bearer-grpc: error:").split()
    assert _stored(tmp_path / DB) == []


def test_users_add_without_password(cli: Cli, tmp_path: Path) -> None:
    assert_one_line_error(cli("users", "add", "alice", "--audiences", "x", input=""))
    assert _stored(tmp_path / DB) == []


def test_users_list_and_remove(cli: Cli) -> None:
    cli.ok("users", "add", "alice", "--scopes", "r,w", "--audiences", "x,y", input=PASSWORD)
    rows = json.loads(cli.ok("users", "list", "--json").stdout)
    assert [(r["name"], r["scopes"], r["audiences"]) for r in rows] == [
        ("alice", ["r", "w"], ["x", "y"])
    ]
    assert "alice" in cli.ok("users", "list").stdout
    cli.ok("users", "remove", "alice")
    assert _names(cli, "users") == []
    assert cli.ok("users", "list").stdout.strip() == "(none)"


@pytest.mark.parametrize("noun", ["clients", "users"])
def test_remove_unknown(cli: Cli, noun: str) -> None:
    line = assert_one_line_error(cli(noun, "remove", "nobody"))
    assert "nobody" in line


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("scopes", ['a"b', "é"])
def test_bad_scope_syntax(cli: Cli, tmp_path: Path, scopes: str) -> None:
    line = assert_one_line_error(
        cli("clients", "add", "svc", "--scopes", scopes, "--audiences", "x")
    )
    assert "scope" in line
    assert _stored(tmp_path / DB) == []


@pytest.mark.process
def test_missing_audiences_is_a_usage_error(process_cli: Cli) -> None:
    result = process_cli("clients", "add", "svc")
    assert result.returncode == 2
    assert "--audiences" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["bad name", "x" * 129])
def test_bad_name(cli: Cli, name: str) -> None:
    line = assert_one_line_error(cli("clients", "add", name, "--audiences", "x"))
    assert "name" in line


def test_bad_audience(cli: Cli) -> None:
    line = assert_one_line_error(cli("clients", "add", "svc", "--audiences", "x y"))
    assert "audience" in line


def test_name_of_128_characters(cli: Cli) -> None:
    cli.ok("clients", "add", "n" * 128, "--audiences", "x")


def test_name_alphabet_as_readme_states(cli: Cli) -> None:
    """README: "names are 1-128 characters of letters, digits and `._@+:-`, starting with a
    letter or digit" (so no name looks like a flag)."""
    cli.ok("clients", "add", "s_v.c@x+y:z-1", "--audiences", "x")
    for name in ("_svc", "-svc", ".svc"):
        assert "invalid name" in assert_one_line_error(
            cli("clients", "add", "--audiences", "x", "--", name)
        )


# -- keys ----------------------------------------------------------------------------------


def _keys(cli: Cli, *store: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(cli.ok("keys", "list", "--json", *store).stdout)
    return rows


def _wait_for_next_second(not_before: object) -> None:
    # rotate --delay 0 within the second of the previous key's not_before would make the new
    # key wait for the next second (see test_rotations_within_one_second_take_over_in_order);
    # let the clock leave that second first so that it signs at once.
    assert isinstance(not_before, int)
    wait_until(lambda: time.time() >= not_before + 1, timeout=3, interval=0.02)


@pytest.mark.process
def test_first_key_is_created_by_serve(cli: Cli, tmp_path: Path) -> None:
    assert cli.ok("keys", "list").stdout.strip() == "(none)"
    assert _keys(cli) == []
    with running_server(tmp_path) as server:
        keys = _keys(cli)
        assert server.stop() == 0
    assert [k["state"] for k in keys] == ["signing"]
    assert keys[0]["alg"] == "ES256"
    assert "signing" in cli.ok("keys", "list").stdout


def test_keys_rotate_now_then_staged(cli: Cli) -> None:
    first = json.loads(cli.ok("keys", "rotate", "--delay", "0", "--json").stdout)
    assert set(first) >= {"kid", "alg", "not_before"}
    assert [(k["kid"], k["state"]) for k in _keys(cli)] == [(first["kid"], "signing")]
    _wait_for_next_second(first["not_before"])
    second = json.loads(cli.ok("keys", "rotate", "--delay", "0", "--json").stdout)
    states = {k["kid"]: k["state"] for k in _keys(cli)}
    assert states == {first["kid"]: "retired", second["kid"]: "signing"}

    before = time.time()
    staged = json.loads(
        cli.ok("keys", "rotate", "--delay", "3600", "--algorithm", "EdDSA", "--json").stdout
    )
    assert staged["alg"] == "EdDSA"
    assert staged["not_before"] >= int(before) + 3600
    states = {k["kid"]: k["state"] for k in _keys(cli)}
    assert states == {first["kid"]: "retired", second["kid"]: "signing", staged["kid"]: "staged"}
    plain = cli.ok("keys", "list").stdout
    assert all(state in plain for state in ("staged", "signing", "retired"))


def test_rotations_within_one_second_take_over_in_order(cli: Cli, tmp_path: Path) -> None:
    """Several ``rotate --delay 0`` in the same second: the last one added must sign.

    ``not_before`` has one-second resolution and keys are ordered by (not_before, kid), so
    a key staged in the same second as the previous one must not lose to it because its
    random kid sorts lower. The clock is frozen (in the past, so that every key is due)
    until a kid sorting lower than an earlier one has been drawn.
    """
    frozen = float(int(time.time()) - 600)
    store = open_store(sqlite_url(tmp_path / "bearer-grpc-data"))
    try:
        admin = Admin(store, clock=lambda: frozen)
        kids: list[str] = []
        while len(kids) < 2 or kids[-1] > max(kids[:-1]):  # ~3 draws
            assert len(kids) < 64
            kids.append(admin.rotate_key(algorithm="ES256", delay=0, kek=None).kid)
    finally:
        store.close()
    states = {k["kid"]: k["state"] for k in _keys(cli)}
    assert states == {kid: "signing" if kid == kids[-1] else "retired" for kid in kids}


def test_rotate_on_an_encrypted_store_needs_the_right_kek(cli: Cli, tmp_path: Path) -> None:
    """A key staged in the clear next to sealed ones, or sealed with another key-encryption
    key, would leave every replica unable to load its key ring: refused."""
    kek, other = tmp_path / "kek", tmp_path / "other"
    kek.write_text("k" * 32)
    other.write_text("o" * 32)
    kek.chmod(0o600)
    other.chmod(0o600)
    cli.ok("keys", "rotate", "--key-encryption-key-file", str(kek))
    assert "encrypted" in assert_one_line_error(cli("keys", "rotate"))
    wrong = cli("keys", "rotate", "--key-encryption-key-file", str(other))
    assert "key-encryption key" in assert_one_line_error(wrong)
    assert len(json.loads(cli.ok("keys", "list", "--json").stdout)) == 1
    cli.ok("keys", "rotate", env={"BEARER_GRPC_KEY_ENCRYPTION_KEY": "k" * 32})


def test_rotate_negative_delay(cli: Cli) -> None:
    assert_one_line_error(cli("keys", "rotate", "--delay", "-5"))


# -- where the store lives ---------------------------------------------------------------------


@pytest.mark.process
def test_data_dir_0700_and_database_0600(process_cli: Cli, tmp_path: Path) -> None:
    process_cli.ok("clients", "list", umask=0)
    assert _mode(tmp_path / "bearer-grpc-data") == 0o700
    assert _mode(tmp_path / DB) == 0o600


def test_store_url_instead_of_data_dir(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    db = tmp_path / "elsewhere" / "tokens.db"
    url = f"sqlite:///{db}"
    cli.ok("clients", "add", "svc", "--audiences", "x", "--store", url, umask=0)
    assert _names(cli, "clients", "--store", url) == ["svc"]
    assert not (tmp_path / "bearer-grpc-data").exists()  # the default data dir is unused
    assert _mode(db) == 0o600


def test_store_url_from_env(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    cli.ok("clients", "add", "svc", "--audiences", "x", env={"BEARER_GRPC_STORE": url})
    assert _stored(tmp_path / "env.db") == [("client", "svc")]


def test_data_dir_from_env_and_flag_wins(cli: Cli, tmp_path: Path) -> None:
    env = {"BEARER_GRPC_DATA_DIR": str(tmp_path / "from-env")}
    cli.ok("clients", "add", "env-svc", "--audiences", "x", env=env)
    assert (tmp_path / "from-env" / "bearer-grpc.db").exists()
    assert not (tmp_path / "bearer-grpc-data").exists()
    cli.ok("clients", "add", "flag-svc", "--audiences", "x", "--data-dir", "from-flag", env=env)
    assert _stored(tmp_path / "from-flag" / "bearer-grpc.db") == [("client", "flag-svc")]
    assert _stored(tmp_path / "from-env" / "bearer-grpc.db") == [("client", "env-svc")]


@pytest.mark.parametrize(
    "args",
    [
        ("clients", "list"),
        ("serve", "--listen", "127.0.0.1:0"),
    ],
    ids=["clients-list", "serve"],
)
@pytest.mark.process
def test_unreachable_postgres(process_cli: Cli, args: tuple[str, ...]) -> None:
    # From the environment: a password on the command line adds a warning line.
    env = {"BEARER_GRPC_STORE": "postgresql://u:secretpw@127.0.0.1:1/x"}
    result = process_cli(*args, env=env)
    assert_one_line_error(result)
    assert "secretpw" not in result.stderr + result.stdout


def test_unsupported_store_url(cli: Cli) -> None:
    result = cli("clients", "list", "--store", "mysql://u:secretpw@127.0.0.1/x")
    assert_one_line_error(result)
    assert "secretpw" not in result.stderr


@pytest.mark.process
def test_help_never_shows_a_value_from_the_environment(process_cli: Cli) -> None:
    """Help text shows defaults, never environment values: BEARER_GRPC_STORE may carry a
    database password."""
    env = {"BEARER_GRPC_STORE": "postgresql://svc:S3cretPW@db.invalid/bg"}
    result = process_cli("serve", "--help", env=env)
    assert result.returncode == 0
    assert "S3cretPW" not in result.stdout and "BEARER_GRPC_STORE" in result.stdout


def test_the_reserved_name_is_refused(cli: Cli) -> None:
    line = assert_one_line_error(cli("clients", "add", "bearer-grpc", "--audiences", "x"))
    assert "reserved" in line
