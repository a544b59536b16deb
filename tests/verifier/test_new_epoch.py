"""A backup restored under a running fleet: ``store new-epoch`` closes the gap it opens.

A real ``bearer-grpc serve`` and a real verifier (sync and aio) following it through a
proxy. The verifier has applied revocations 1 (``a``, in the backup) and 2 (``b``, after
it). The store is restored from the backup, so its log ends at 1 again, and a revocation
of ``c`` is committed there before the verifier gets back: it is numbered 2 as well. The
verifier then asks to resume after 2; the server's cursor (2) does not show that its 2
is another revocation. Without a new epoch the verifier skips ``c`` and accepts it; after
``store new-epoch`` it follows the log again from the start and refuses it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bearer_grpc.core.errors import TokenRevoked
from bearer_grpc.store import DATABASE_FILENAME
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import Cli, ServeProcess, running_server, wait_until
from tests.proxy import Proxy, proxy
from tests.verifier.conftest import Flavour, Handle, refused

pytestmark = [pytest.mark.process, pytest.mark.slow]

SERVE = ("--sync-interval", "0.1")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def credentials(cli: Cli) -> tuple[str, str]:
    added = json.loads(cli.ok("clients", "add", "svc", "--audiences", "orders", "--json").stdout)
    return added["client_id"], added["client_secret"]


@pytest.fixture
def front(tmp_path: Path) -> Iterator[tuple[ServeProcess, Proxy]]:
    """The first server, and the proxy verifiers reach it through (tests take it before
    ``flavour``: their verifiers close first, so no reconnection races the proxy's end)."""
    with running_server(tmp_path, *SERVE) as server, proxy(server.target) as link:
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


def _restore(backup: Path, data_dir: Path) -> None:
    """What an operator does with serve stopped: the WAL files go, the copy comes in."""
    database = data_dir / DATABASE_FILENAME
    for suffix in ("-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(backup, database)


@pytest.mark.parametrize("new_epoch", [True, False], ids=["new-epoch", "without"])
def test_restored_backup_is_followed_from_the_start_after_new_epoch(
    front: tuple[ServeProcess, Proxy],
    flavour: Flavour,
    cli: Cli,
    credentials: tuple[str, str],
    tmp_path: Path,
    new_epoch: bool,
) -> None:
    server, link = front
    verifier = flavour.from_token_service(link.target)
    a, b, c, d = (_issue(server, credentials) for _ in range(4))
    assert _revoke(server, a) == 1
    wait_until(lambda: _refuses(verifier, a), timeout=5.0)

    cli.ok("store", "backup", "backup.db")  # online, while serve runs
    assert _revoke(server, b) == 2
    wait_until(lambda: _refuses(verifier, b), timeout=5.0)
    assert verifier.verifier.local.revocations.sequence == 2

    link.cut()  # the verifier is away while the store is restored and revoked in
    assert server.stop() == 0
    _restore(tmp_path / "backup.db", tmp_path / "bearer-grpc-data")
    if new_epoch:
        cli.ok("store", "new-epoch")
    with running_server(tmp_path, *SERVE) as restored:
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
    cli: Cli,
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

    epoch = json.loads(cli.ok("store", "new-epoch", "--json").stdout)["epoch"]

    wait_until(lambda: verifier.verifier._follower.feed.epoch == epoch, timeout=10.0)
    assert epoch != before
    server.wait_for_line("new revocation epoch", stream="stderr", timeout=5.0)
    later = _issue(server, credentials)
    assert _revoke(server, later) == 2
    wait_until(lambda: _refuses(verifier, later), timeout=5.0)
