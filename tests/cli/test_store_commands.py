"""``bearer-grpc store backup|new-epoch``: a backup while ``serve`` runs, a restore, an epoch.

The restore-gap itself, with a verifier following a real server, is in
tests/verifier/test_new_epoch.py.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from bearer_grpc.store import open_store, sqlite_url
from tests.cli._support import README
from tests.harness import (
    Cli,
    assert_one_line_error,
    clean_env,
    pg_dsn,
    pg_schema_url,
    running_server,
)

DATA = Path("bearer-grpc-data")
DB = DATA / "bearer-grpc.db"


def _names(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return sorted(r[0] for r in conn.execute("SELECT name FROM accounts"))


def _epoch(url: str) -> str | None:
    store = open_store(url)
    try:
        return store.get_setting("revocation_epoch")
    finally:
        store.close()


@pytest.mark.process
@pytest.mark.slow
def test_backup_while_serving_then_restore(cli: Cli, tmp_path: Path) -> None:
    cli.ok("clients", "add", "before", "--audiences", "orders")
    (tmp_path / "backups").mkdir()
    with running_server(tmp_path) as server:
        result = json.loads(cli.ok("store", "backup", "backups/one.db", "--json").stdout)
        cli.ok("clients", "add", "after", "--audiences", "orders")
        assert server.proc.poll() is None
        epoch = _epoch(sqlite_url(tmp_path / DATA))
    backup = tmp_path / "backups" / "one.db"
    assert result == {"backup": "backups/one.db", "bytes": backup.stat().st_size}
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert _names(backup) == ["before"]
    assert _names(tmp_path / DB) == ["after", "before"]

    shutil.copyfile(backup, tmp_path / DB)  # serve stopped: its WAL was checkpointed away
    new = json.loads(cli.ok("store", "new-epoch", "--json").stdout)["epoch"]
    assert epoch is not None and new != epoch
    assert _epoch(sqlite_url(tmp_path / DATA)) == new
    listed = json.loads(cli.ok("clients", "list", "--json").stdout)
    assert [row["name"] for row in listed] == ["before"]


def test_backup_with_store_url_and_text_output(cli: Cli, tmp_path: Path) -> None:
    cli.ok("clients", "add", "svc", "--audiences", "orders")
    url = f"sqlite:///{tmp_path / DB}"
    out = cli.ok("store", "backup", "copy.db", "--store", url).stdout
    assert out.startswith(f"backed up {tmp_path / DB} to copy.db (")
    assert _names(tmp_path / "copy.db") == ["svc"]


@pytest.mark.parametrize(
    "target", ["a-file/copy.db", "missing-dir/copy.db"], ids=["parent-is-a-file", "no-parent"]
)
def test_backup_to_unwritable_path_is_one_line_and_leaves_the_store(
    cli: Cli, tmp_path: Path, target: str
) -> None:
    cli.ok("clients", "add", "svc", "--audiences", "orders")
    (tmp_path / "a-file").write_text("x")
    before = (tmp_path / DB).read_bytes()
    line = assert_one_line_error(cli("store", "backup", target))
    assert line.startswith(f"bearer-grpc: error: cannot write the backup {tmp_path / target}:")
    assert (tmp_path / DB).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "bearer-grpc-data"]


def test_backup_of_a_missing_store_creates_nothing(cli: Cli, tmp_path: Path) -> None:
    line = assert_one_line_error(cli("store", "backup", "copy.db"))
    assert "no SQLite store at" in line
    assert list(tmp_path.iterdir()) == []


def test_backup_of_postgresql_points_at_pg_dump(cli: Cli, tmp_path: Path) -> None:
    result = cli("store", "backup", "x.db", "--store", "postgresql://tokens@db.invalid/tokens")
    assert "pg_dump" in assert_one_line_error(result)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_new_epoch_on_postgresql(cli: Cli) -> None:
    with pg_schema_url(pg_dsn()) as url:
        first = _epoch(url)
        epoch = json.loads(cli.ok("store", "new-epoch", "--store", url, "--json").stdout)["epoch"]
        assert first is None and _epoch(url) == epoch
        again = cli.ok("store", "new-epoch", "--store", url).stdout
        assert again.startswith("new revocation epoch ") and epoch not in again


@pytest.mark.process
def test_readme_restore_steps_run_as_written(cli: Cli, tmp_path: Path) -> None:
    """The README's restore block (all but starting serve) restores a backup."""
    text = README.read_text()
    section = text[text.index("### Backup and restore\n") :]
    block = section[section.index("```sh\n") + 6 : section.index("```\n", section.index("```sh"))]
    steps = [
        line
        for line in block.splitlines()
        if line and not line.startswith(("#", "bearer-grpc serve"))
    ]
    assert steps[-1] == "bearer-grpc store new-epoch --data-dir bearer-grpc-data"
    cli.ok("clients", "add", "kept", "--audiences", "orders")
    cli.ok("store", "backup", "backup.db")
    cli.ok("clients", "add", "lost", "--audiences", "orders")
    before = _epoch(sqlite_url(tmp_path / DATA))
    bin_dir = Path(sys.executable).parent
    env = clean_env({"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    subprocess.run(
        ["bash", "-euc", "\n".join(steps)], cwd=tmp_path, env=env, check=True, timeout=60
    )
    assert _names(tmp_path / DB) == ["kept"]
    assert stat.S_IMODE((tmp_path / DB).stat().st_mode) == 0o600
    assert _epoch(sqlite_url(tmp_path / DATA)) not in (None, before)
