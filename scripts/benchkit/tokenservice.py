"""A real TokenService to measure: ``bearer-grpc serve`` on SQLite or PostgreSQL.

Set up through the CLI only (``clients add``, ``serve``), as an operator would. PostgreSQL
runs get a fresh schema (selected with the URL's ``options=-csearch_path=...``), dropped
afterwards, and a key-encryption key so private keys are not stored in clear.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from benchkit import procs

AUDIENCE = "orders"
SERVICE_PATH = "/bearer_grpc.v1.TokenService"


@dataclass
class Store:
    """Where a TokenService keeps its state: the ``--data-dir``/``--store`` flags."""

    name: str
    args: tuple[str, ...]


@dataclass
class Client:
    """Client credentials registered with ``bearer-grpc clients add``."""

    client_id: str
    client_secret: str

    def issue_request(self) -> pb.IssueTokenRequest:
        """An IssueToken request with these credentials."""
        grant = pb.ClientCredentialsGrant(
            client_id=self.client_id, client_secret=self.client_secret
        )
        return pb.IssueTokenRequest(client_credentials=grant)


@contextlib.contextmanager
def sqlite_store() -> Iterator[Store]:
    """An empty embedded SQLite store in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        yield Store("SQLite", ("--data-dir", str(Path(tmp) / "data")))


@contextlib.contextmanager
def pg_store(dsn: str) -> Iterator[Store]:
    """A fresh PostgreSQL schema on ``dsn`` (dropped on exit), with a key-encryption key."""
    import psycopg
    from psycopg import sql

    schema = f"bench_{secrets.token_hex(6)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            kek = Path(tmp) / "kek"
            kek.write_text(secrets.token_hex(32))  # text: the CLI strips whitespace
            kek.chmod(0o600)
            separator = "&" if "?" in dsn else "?"
            url = f"{dsn}{separator}options=-csearch_path%3D{schema}"
            yield Store("PostgreSQL", ("--store", url, "--key-encryption-key-file", str(kek)))
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def add_client(store: Store, name: str = "bench") -> Client:
    """Register a client that may ask for audience :data:`AUDIENCE`."""
    out = procs.bearer_grpc_cli(
        "clients", "add", name, "--scopes", "a", "--audiences", AUDIENCE, "--json", *store.args
    )
    record = json.loads(out)
    return Client(record["client_id"], record["client_secret"])


@contextlib.contextmanager
def serving(store: Store, replicas: int = 1, *extra: str) -> Iterator[list[procs.Server]]:
    """``replicas`` ``bearer-grpc serve`` processes on ``store``, started one after another."""
    servers: list[procs.Server] = []
    try:
        for index in range(replicas):
            servers.append(procs.start_token_service(f"{store.name} #{index}", store.args, *extra))
        yield servers
    finally:
        procs.stop(servers)


@contextlib.contextmanager
def stub(target: str) -> Iterator[pb_grpc.TokenServiceStub]:
    """A sync TokenService stub on a plaintext channel (closed on exit)."""
    with grpc.insecure_channel(target) as channel:
        yield pb_grpc.TokenServiceStub(channel)


def issue_tokens(target: str, client: Client, count: int) -> Sequence[str]:
    """``count`` access tokens issued by IssueToken (client credentials)."""
    with stub(target) as tokens:
        request = client.issue_request()
        return [tokens.IssueToken(request, timeout=10).access_token for _ in range(count)]
