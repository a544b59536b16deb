"""The README is the CLI's spec: its tour runs as written, its references match the code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bearer_grpc._verifier.revocations import watch_request
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.cli._support import README, REPO, help_text, secret_of
from tests.harness import Cli, clean_env, running_server

TEXT = README.read_text()


def _section(heading: str) -> str:
    """The README text under ``heading`` up to the next heading of the same or higher level."""
    level = heading.split(" ", 1)[0]
    start = TEXT.index(heading + "\n") + len(heading) + 1
    following = re.compile(rf"^#{{1,{len(level)}}} ", re.M).search(TEXT, start)
    return TEXT[start : following.start() if following else len(TEXT)]


def _fenced(text: str, language: str = "sh") -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.M | re.S)


def _table(text: str) -> list[list[str]]:
    """Rows (header and separator excluded) of the first Markdown table in ``text``."""
    rows: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def _code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# -- the tour ------------------------------------------------------------------------------------


def tour() -> str:
    """The shell block between the tour markers, without its fences."""
    match = re.search(r"<!-- tour:begin -->\n(.*?)<!-- tour:end -->", TEXT, re.S)
    assert match, "README has no tour markers"
    [block] = _fenced(match.group(1))
    return block


@pytest.mark.process
def test_tour_runs_against_a_real_server(tmp_path: Path) -> None:
    script = tmp_path / "tour.sh"
    script.write_text(tour())
    with running_server(tmp_path) as server:
        env = clean_env(
            {
                "BEARER_GRPC_TARGET": server.target,
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        result = subprocess.run(
            ["bash", "-euo", "pipefail", str(script)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        # the tour's last line is `! bearer-grpc token verify`: make sure it had a token to
        # refuse, i.e. step 4 really revoked the token of step 2
        with server.channel() as channel:
            stream = pb_grpc.TokenServiceStub(channel).WatchRevocations(
                watch_request(0), timeout=10
            )
            try:
                first = next(stream)
            finally:
                stream.cancel()
        assert first.token_id
        assert result.stdout.count("active: sub=orders-reader") == 1
        assert server.stop() == 0


# -- quick start ---------------------------------------------------------------------------------


def test_quick_start_names_scripts_serve_and_test() -> None:
    [block] = _fenced(_section("## Quick start"))
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["scripts/serve", "scripts/test"]
    for command in commands:
        path = REPO / command
        assert path.is_file() and os.access(path, os.X_OK), command


def test_developing_table_names_existing_scripts() -> None:
    missing = [
        name
        for row in _table(_section("## Developing"))
        for name in _code_spans(row[0])[:1]
        if not (REPO / name.split()[0]).exists()
    ]
    assert missing == []


# -- serve flags ---------------------------------------------------------------------------------


def _readme_serve_flags() -> dict[str, tuple[str, str]]:
    """``--flag`` → (environment variable, default) from the README's serve table."""
    flags = {}
    for flag_cell, env_cell, default_cell, _meaning in _table(_section("### `bearer-grpc serve`")):
        names, envs = _code_spans(flag_cell), _code_spans(env_cell)
        assert len(names) == len(envs), (flag_cell, env_cell)
        default = (_code_spans(default_cell) or [""])[0]
        for name, env in zip(names, envs, strict=True):
            flags[name] = (env, default)
    return flags


@pytest.fixture(scope="module")
def help_flags() -> dict[str, str]:
    """``--flag`` → its help text (with the ``env`` and ``default`` note) from ``serve --help``."""
    text = help_text("serve")
    options = text[text.index("options:") :]
    entries = re.split(r"\n  (?=-)", options)
    out = {}
    for entry in entries[1:]:
        flag = re.match(r"(?:-[a-z], )?(--[a-z-]+)", entry.strip())
        assert flag, entry
        if flag.group(1) != "--help":
            out[flag.group(1)] = " ".join(entry.split())
    return out


def test_readme_serve_flags_match_help(help_flags: dict[str, str]) -> None:
    assert sorted(_readme_serve_flags()) == sorted(help_flags)


def test_readme_serve_env_names(help_flags: dict[str, str]) -> None:
    for flag, (env, _default) in _readme_serve_flags().items():
        assert env == "BEARER_GRPC_" + flag.removeprefix("--").replace("-", "_").upper(), flag
        assert f"env {env}" in help_flags.get(flag, ""), flag


def test_readme_serve_defaults_match_help(help_flags: dict[str, str]) -> None:
    for flag, (_env, default) in _readme_serve_flags().items():
        shown = re.search(r"default (\S+?)\)", help_flags.get(flag, ""))
        if not default:
            assert shown is None, flag
            continue
        assert shown, flag
        try:
            assert float(shown.group(1)) == float(default), flag
        except ValueError:
            assert shown.group(1) == default, flag


@pytest.mark.process
def test_readme_serve_env_variables_are_honoured(tmp_path: Path) -> None:
    """Set every serve setting through its README variable; the server uses them."""
    (tmp_path / "state").mkdir()
    env = {
        "BEARER_GRPC_LISTEN": "127.0.0.1:0",
        "BEARER_GRPC_DATA_DIR": str(tmp_path / "state"),
        "BEARER_GRPC_ISSUER": "https://tokens.example",
        "BEARER_GRPC_ACCESS_TTL": "120",
        "BEARER_GRPC_KEY_ALGORITHM": "EdDSA",
        "BEARER_GRPC_GRACE": "3",
        "BEARER_GRPC_SYNC_INTERVAL": "0.5",
        "BEARER_GRPC_LOG_LEVEL": "info",
    }
    added = Cli(tmp_path).ok("clients", "add", "svc", "--audiences", "orders", "--json", env=env)
    grant = pb.ClientCredentialsGrant(client_id="svc", client_secret=secret_of(added))
    with running_server(tmp_path, listen=None, env=env) as server:
        with server.channel() as channel:
            stub = pb_grpc.TokenServiceStub(channel)
            jwks = stub.GetJwks(pb.GetJwksRequest(), timeout=10)
            issued = stub.IssueToken(pb.IssueTokenRequest(client_credentials=grant), timeout=10)
        assert issued.expires_in == 120
        assert jwks.issuer == "https://tokens.example"
        assert '"OKP"' in jwks.jwks_json  # EdDSA key
        assert server.listening["issuer"] == "https://tokens.example"
        assert server.stop() == 0
    assert (tmp_path / "state" / "bearer-grpc.db").exists()
    assert not (tmp_path / "bearer-grpc-data").exists()


def test_readme_token_commands_exist() -> None:
    rows = _table(_section("### Token commands"))
    for row in rows:
        [usage] = _code_spans(row[0])[:1]
        words = usage.split()
        text = help_text(*words[:2])
        for flag in re.findall(r"--[a-z-]+", usage):
            assert flag in text, (usage, flag)
