"""A backup restored under a running fleet: ``store new-epoch`` closes the gap it opens.

A real ``bearer-grpc serve`` and a real verifier (sync and aio) following it through a
proxy, on SQLite (``store backup``, the file copied back) and on PostgreSQL (``pg_dump``
and ``pg_restore`` of the store's schema). The verifier has applied revocations 1 (``a``,
in the backup) and 2 (``b``, after it). The store is restored from the backup, so its log
ends at 1 again, and a revocation of ``c`` is committed there before the verifier gets
back: it is numbered 2 as well. The verifier then asks to resume after 2; the server's
cursor (2) does not show that its 2 is another revocation. Without a new epoch the
verifier skips ``c`` and accepts it; after ``store new-epoch`` it follows the log again
from the start and refuses it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bearer_grpc.core.errors import TokenRevoked
from bearer_grpc.store import DATABASE_FILENAME
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import Cli, ServeProcess, pg_dsn, pg_schema_url, running_server, wait_until
from tests.proxy import Proxy, proxy
from tests.verifier.conftest import Flavour, Handle, refused

pytestmark = [pytest.mark.process, pytest.mark.slow]

SYNC = ("--sync-interval", "0.1")


@dataclass
class Backend:
    """A store as the operator backs it up and restores it."""

    cli: Cli
    args: tuple[str, ...]
    """The ``--store`` option of every command (none: the default data directory)."""
    dsn: str = ""
    schema: str = ""

    def backup(self, file: Path) -> None:
        if not self.schema:
            self.cli.ok("store", "backup", str(file), *self.args)
            return
        dump = ["pg_dump", "--format=custom", f"--schema={self.schema}", f"--file={file}"]
        subprocess.run([*dump, self.dsn], check=True, timeout=60)

    def restore(self, file: Path) -> None:
        """With serve stopped."""
        if not self.schema:
            database = self.cli.cwd / "bearer-grpc-data" / DATABASE_FILENAME
            for suffix in ("-wal", "-shm"):
                database.with_name(database.name + suffix).unlink(missing_ok=True)
            shutil.copyfile(file, database)
            return
        drop = f'DROP SCHEMA "{self.schema}" CASCADE'
        subprocess.run(["psql", "-q", "-c", drop, self.dsn], check=True, timeout=60)
        subprocess.run(["pg_restore", f"--dbname={self.dsn}", str(file)], check=True, timeout=60)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    cli = Cli(tmp_path)
    if request.param == "sqlite":
        yield Backend(cli, ())
        return
    dsn = pg_dsn()
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump and pg_restore are not installed")
    with pg_schema_url(dsn) as url:
        schema = re.search(r"search_path%3D(\w+)", url)
        assert schema is not None
        yield Backend(cli, ("--store", url), dsn, schema.group(1))


@pytest.fixture
def credentials(backend: Backend) -> tuple[str, str]:
    added = backend.cli.ok(
        "clients", "add", "svc", "--audiences", "orders", "--json", *backend.args
    )
    result = json.loads(added.stdout)
    return result["client_id"], result["client_secret"]


@pytest.fixture
def front(backend: Backend) -> Iterator[tuple[ServeProcess, Proxy]]:
    """The first server, and the proxy verifiers reach it through (tests take it before
    ``flavour``: their verifiers close first, so no reconnection races the proxy's end)."""
    with (
        running_server(backend.cli.cwd, *SYNC, *backend.args) as server,
        proxy(server.target) as link,
    ):
        yield server, link


def _stub(server: ServeProcess) -> pb_grpc.TokenServiceStub:
    return pb_grpc.TokenServiceStub(server.channel())


def _issue(server: ServeProcess, credentials: tuple[str, str]) -> str:
    grant = pb.ClientCredentialsGrant(client_id=credentials[0], client_secret=credentials[1])
    request = pb.IssueTokenRequest(client_credentials=grant)
    return str(_stub(server).IssueToken(request, timeout=10).access_token)


def _revoke(server: ServeProcess, token: str) -> int:
    return int(_stub(server).RevokeToken(pb.RevokeTokenRequest(token=token), timeout=10).sequence)


def _refuses(verifier: Handle, token: str) -> bool:
    return refused(lambda: verifier.verify(token), TokenRevoked)


@pytest.mark.parametrize("new_epoch", [True, False], ids=["new-epoch", "without"])
def test_restored_backup_is_followed_from_the_start_after_new_epoch(
    front: tuple[ServeProcess, Proxy],
    flavour: Flavour,
    backend: Backend,
    credentials: tuple[str, str],
    tmp_path: Path,
    new_epoch: bool,
) -> None:
    server, link = front
    verifier = flavour.from_token_service(link.target)
    a, b, c, d = (_issue(server, credentials) for _ in range(4))
    assert _revoke(server, a) == 1
    wait_until(lambda: _refuses(verifier, a), timeout=5.0)

    backend.backup(tmp_path / "backup")  # online, while serve runs
    assert _revoke(server, b) == 2
    wait_until(lambda: _refuses(verifier, b), timeout=5.0)
    assert verifier.verifier.local.revocations.sequence == 2

    link.cut()  # the verifier is away while the store is restored and revoked in
    assert server.stop() == 0
    backend.restore(tmp_path / "backup")
    if new_epoch:
        backend.cli.ok("store", "new-epoch", *backend.args)
    with running_server(tmp_path, *SYNC, *backend.args) as restored:
        assert _revoke(restored, c) == 2  # the number b had
        link.retarget(restored.target)
        link.heal()
        assert _revoke(restored, d) == 3
        wait_until(lambda: _refuses(verifier, d), timeout=10.0)
        assert _refuses(verifier, a) and _refuses(verifier, b)  # known ones stay refused
        if new_epoch:
            wait_until(lambda: _refuses(verifier, c), timeout=5.0)
        else:  # the gap: c is revoked in the store, and this verifier never hears of it
            assert verifier.verify(c).subject == "svc"


def test_new_epoch_while_serving_restarts_every_stream(
    front: tuple[ServeProcess, Proxy],
    flavour: Flavour,
    backend: Backend,
    credentials: tuple[str, str],
) -> None:
    """A new epoch given to a running server's store (PostgreSQL replicas restored under
    their feet): the server reads its log again and ends every stream; verifiers follow
    the new epoch from sequence 0."""
    server, link = front
    verifier = flavour.from_token_service(link.target)
    token = _issue(server, credentials)
    assert _revoke(server, token) == 1
    wait_until(lambda: _refuses(verifier, token), timeout=5.0)
    before = verifier.verifier._follower.feed.epoch

    made = backend.cli.ok("store", "new-epoch", "--json", *backend.args)
    epoch = json.loads(made.stdout)["epoch"]

    wait_until(lambda: verifier.verifier._follower.feed.epoch == epoch, timeout=10.0)
    assert epoch != before
    server.wait_for_line("new revocation epoch", stream="stderr", timeout=5.0)
    later = _issue(server, credentials)
    assert _revoke(server, later) == 2
    wait_until(lambda: _refuses(verifier, later), timeout=5.0)
