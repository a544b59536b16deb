"""``bearer-grpc serve`` as a real process: listening, health, signals, TLS, persistence."""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import stat
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from bearer_grpc._verifier.revocations import watch_request
from bearer_grpc.cli._options import duration
from bearer_grpc.store import open_store, sqlite_url
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.cli._support import secret_of
from tests.harness import (
    ERROR_PREFIX,
    NOT_SERVING,
    SERVING,
    Cli,
    PkiFiles,
    assert_one_line_error,
    describe,
    health_status,
    json_lines,
    pki_files,
    running_server,
    start_server,
)

pytestmark = pytest.mark.process

TOKEN_SERVICE = "bearer_grpc.v1.TokenService"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    """Certificates for the TLS tests."""
    return pki_files(tmp_path_factory.mktemp("pki"))


def _add_client(cli: Cli) -> dict[str, str]:
    """A client; returns the environment that carries its secret."""
    secret = secret_of(cli.ok("clients", "add", "svc", "--audiences", "orders", "--json"))
    return {"BEARER_GRPC_CLIENT_SECRET": secret}


# -- listening and health ----------------------------------------------------------------------


def test_listening_line_and_health(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        line = server.listening
        assert line["listen"] == "127.0.0.1:0"
        assert isinstance(line["port"], int) and line["port"] > 0
        assert line["level"] == "info"
        assert health_status(server.target) == SERVING
        assert health_status(server.target, TOKEN_SERVICE) == SERVING
        assert server.stop() == 0
        stderr = server.stderr()
    lines = stderr.strip().splitlines()
    assert len(json_lines(stderr)) == len(lines), stderr  # nothing but JSON lines
    assert [r["message"] for r in json_lines(stderr)][-2:] == ["shutting down", "stopped"]


def test_listen_from_env_and_flag_wins(tmp_path: Path) -> None:
    env = {"BEARER_GRPC_LISTEN": "127.0.0.1:0"}
    with running_server(tmp_path, listen=None, env=env) as server:
        assert server.listening["listen"] == "127.0.0.1:0"
        assert health_status(server.target) == SERVING
        assert server.stop() == 0
    with running_server(tmp_path, env={"BEARER_GRPC_LISTEN": "nonsense"}) as server:
        assert health_status(server.target) == SERVING
        assert server.stop() == 0


def test_data_files_are_private_while_serving(tmp_path: Path) -> None:
    data = tmp_path / "bearer-grpc-data"
    with running_server(tmp_path, umask=0) as server:
        assert health_status(server.target) == SERVING
        files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir()}
        assert server.stop() == 0
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert files == {
        "bearer-grpc.db": 0o600,
        "bearer-grpc.db-wal": 0o600,
        "bearer-grpc.db-shm": 0o600,
    }


# -- stopping ----------------------------------------------------------------------------------


def test_sigterm_ends_streams_and_exits_0(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    secret = _add_client(cli)["BEARER_GRPC_CLIENT_SECRET"]
    # Longer than the watch stream's 5 s safety poll, so that this test checks the exit and
    # the refusal; test_sigterm_ends_a_busy_watch_stream_at_once checks the promptness.
    grace = 8.0
    with running_server(tmp_path, "--grace", str(grace)) as server:
        with server.channel() as channel:
            stub = pb_grpc.TokenServiceStub(channel)
            grant = pb.ClientCredentialsGrant(client_id="svc", client_secret=secret)
            token = stub.IssueToken(pb.IssueTokenRequest(client_credentials=grant), timeout=10)
            stub.RevokeToken(pb.RevokeTokenRequest(token=token.access_token), timeout=10)
            stream = stub.WatchRevocations(watch_request(0), timeout=60)
            assert next(stream).sequence >= 1  # the stream is live on the server
            started = time.monotonic()
            server.signal(signal.SIGTERM)
            try:
                rest = list(stream)  # ends instead of following new revocations
            except grpc.RpcError:
                pytest.fail(f"stream ended with {stream.code()}:\n{server.stderr()}")
            assert rest == []
            assert stream.code() == grpc.StatusCode.OK
            assert server.wait(grace + 5) == 0
            assert time.monotonic() - started < grace
        with pytest.raises(grpc.RpcError) as refused:
            health_status(server.target, timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_sigterm_ends_a_busy_watch_stream_at_once(tmp_path: Path) -> None:
    """README: on SIGTERM the server "ends revocation streams". A watcher still receiving a
    backlog when the signal arrives must see its stream end (OK), not be cut off with
    UNAVAILABLE when --grace runs out."""
    now = int(time.time())
    store = open_store(sqlite_url(tmp_path / "bearer-grpc-data"))
    try:
        for i in range(300):
            store.revoke(f"jti-{i:04d}", now + 3600, now)
    finally:
        store.close()
    with running_server(tmp_path, "--grace", "2") as server, server.channel() as channel:
        stream = pb_grpc.TokenServiceStub(channel).WatchRevocations(watch_request(0), timeout=30)
        assert next(stream).token_id == "jti-0000"
        server.signal(signal.SIGTERM)
        try:
            rest = list(stream)
        except grpc.RpcError:
            pytest.fail(f"stream ended with {stream.code()} {stream.details()!r}")
        assert len(rest) <= 299
        assert stream.code() == grpc.StatusCode.OK
        assert server.wait() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_health_turns_not_serving_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    with running_server(tmp_path, "--grace", "5") as server, server.channel() as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=TOKEN_SERVICE), timeout=30
        )
        assert next(watch).status == SERVING
        server.signal(sig)
        try:
            seen = next(watch).status
        except grpc.RpcError:  # the call failing is also acceptable
            seen = None
        watch.cancel()
        assert seen in (NOT_SERVING, None)
        assert server.wait() == 0


# -- TLS -----------------------------------------------------------------------------------------


def test_tls(tmp_path: Path, pki: PkiFiles) -> None:
    cli = Cli(tmp_path)
    env = _add_client(cli)
    tls = ("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))
    with running_server(tmp_path, *tls) as server:
        issue = ("token", "issue", "--client-id", "svc", "--target", server.target)
        result = cli.ok(*issue, "--tls-ca", str(pki.ca), env=env)
        assert result.stdout.count(".") == 2
        by_name = cli.ok(*issue[:-1], f"localhost:{server.port}", "--tls-ca", str(pki.ca), env=env)
        assert by_name.stdout.count(".") == 2
        assert "UNAVAILABLE" in assert_one_line_error(cli(*issue, env=env))  # plaintext client
        wrong_ca = cli(*issue, "--tls-ca", str(pki.stranger_cert), env=env)
        assert wrong_ca.returncode == 1, describe(wrong_ca)
        assert "Traceback" not in wrong_ca.stderr
        assert wrong_ca.stderr.strip().splitlines()[-1].startswith(ERROR_PREFIX)


def test_tls_handshake_failure_prints_one_line(tmp_path: Path, pki: PkiFiles) -> None:
    """README: "Errors print one line on stderr" -- also when the server's certificate
    does not verify (gRPC's C core must not add its own log lines)."""
    cli = Cli(tmp_path)
    tls = ("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))
    with running_server(tmp_path, *tls) as server:
        result = cli(
            "token", "verify", "--audience", "orders", "--target", server.target,
            "--tls-ca", str(pki.stranger_cert), input="token",
        )  # fmt: skip
        assert "UNAVAILABLE" in assert_one_line_error(result)


def test_mtls(tmp_path: Path, pki: PkiFiles) -> None:
    cli = Cli(tmp_path)
    env = _add_client(cli)
    tls = ("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))
    with running_server(tmp_path, *tls, "--tls-client-ca", str(pki.ca)) as server:
        issue = (
            "token",
            "issue",
            "--client-id",
            "svc",
            "--target",
            server.target,
            "--tls-ca",
            str(pki.ca),
        )
        assert_one_line_error(cli(*issue, env=env))  # no client certificate
        stranger = (
            "--tls-client-cert",
            str(pki.stranger_cert),
            "--tls-client-key",
            str(pki.stranger_key),
        )
        assert_one_line_error(cli(*issue, *stranger, env=env))
        mine = ("--tls-client-cert", str(pki.client_cert), "--tls-client-key", str(pki.client_key))
        assert cli.ok(*issue, *mine, env=env).stdout.count(".") == 2


@pytest.mark.parametrize("flag", ["--tls-cert", "--tls-client-ca"])
def test_tls_option_alone(cli: Cli, tmp_path: Path, pki: PkiFiles, flag: str) -> None:
    path = {"--tls-cert": pki.server_cert, "--tls-key": pki.server_key, "--tls-client-ca": pki.ca}
    line = assert_one_line_error(cli("serve", "--listen", "127.0.0.1:0", flag, str(path[flag])))
    assert "--tls-" in line
    assert not (tmp_path / "bearer-grpc-data").exists()  # checked before touching the store


# -- bad configuration -------------------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other socket is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "busy"])
def test_bad_listen(tmp_path: Path, listen: str, request: pytest.FixtureRequest) -> None:
    if listen == "busy":
        listen = f"127.0.0.1:{request.getfixturevalue('busy_port')}"
    server = start_server(tmp_path, listen=listen, wait=False)
    try:
        status = server.wait_exit_or_listening()
    finally:
        server.kill()
    stderr = server.stderr()
    assert status == 1, f"serve --listen {listen} exited {status}:\n{stderr}"
    assert "Traceback" not in stderr, stderr
    # gRPC's C core may log its own line first; ours is the last one
    assert stderr.strip().splitlines()[-1].startswith(ERROR_PREFIX), stderr


@pytest.mark.parametrize("metrics", ["nonsense", "127.0.0.1:99999", "busy"])
def test_bad_metrics_listen(tmp_path: Path, metrics: str, request: pytest.FixtureRequest) -> None:
    if metrics == "busy":
        metrics = f"127.0.0.1:{request.getfixturevalue('busy_port')}"
    server = start_server(tmp_path, "--metrics-listen", metrics, wait=False)
    try:
        status = server.wait_exit_or_listening()
    finally:
        server.kill()
    stderr = server.stderr()
    assert status == 1, f"serve --metrics-listen {metrics} exited {status}:\n{stderr}"
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(ERROR_PREFIX) and "metrics" in last, stderr


@pytest.mark.parametrize(
    "args",
    [("--access-ttl", "10"), ("--refresh-ttl", "60")],
    ids=["access-ttl", "refresh-ttl"],
)
def test_out_of_range_settings(cli: Cli, args: tuple[str, ...]) -> None:
    assert_one_line_error(cli("serve", "--listen", "127.0.0.1:0", *args))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 43200), ("15m", 900), ("90s", 90), ("120", 120), ("2H", 7200)],
)
def test_durations(text: str, seconds: int) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "-5s", "1.5h", "1w", "30 d", "12hh", "\u00b2s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
        duration(text)


def test_rotate_keys_every_below_a_minute_is_refused(cli: Cli) -> None:
    result = cli("serve", "--listen", "127.0.0.1:0", "--rotate-keys-every", "30s")
    assert "60" in assert_one_line_error(result)


def test_private_keys_sealed_with_kek(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    material = base64.b64encode(os.urandom(32)).decode()
    kek = tmp_path / "kek"
    kek.write_text(material + "\n")
    kek.chmod(0o600)
    cli.ok("keys", "rotate", "--delay", "0", "--key-encryption-key-file", str(kek))
    result = cli("serve", "--listen", "127.0.0.1:0", timeout=20)  # the sealed key needs the KEK
    assert_one_line_error(result)
    with running_server(tmp_path, env={"BEARER_GRPC_KEY_ENCRYPTION_KEY": material}) as server:
        assert health_status(server.target) == SERVING
        assert server.stop() == 0


# -- persistence ---------------------------------------------------------------------------------


def test_restart_keeps_keys_tokens_and_revocations(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    env = _add_client(cli)
    with running_server(tmp_path) as server:
        target = {"BEARER_GRPC_TARGET": server.target}
        kept, revoked = (
            cli.ok("token", "issue", "--client-id", "svc", env={**env, **target}).stdout.strip()
            for _ in range(2)
        )
        cli.ok("token", "revoke", input=revoked, env=target)
        assert server.stop() == 0
    with running_server(tmp_path) as server:
        target = {"BEARER_GRPC_TARGET": server.target}
        active = cli("token", "verify", "--audience", "orders", "--json", input=kept, env=target)
        assert active.returncode == 0, describe(active)
        assert json.loads(active.stdout)["subject"] == "svc"
        inactive = cli("token", "verify", "--audience", "orders", input=revoked, env=target)
        assert (inactive.returncode, inactive.stdout.strip()) == (1, "inactive: TOKEN_REVOKED")
        assert server.stop() == 0


# -- metrics -----------------------------------------------------------------------------------


def test_metrics_listen_serves_the_calls_of_this_process(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    env = _add_client(cli)
    with running_server(tmp_path, "--metrics-listen", "127.0.0.1:0") as server:
        (line,) = [r for r in server.records() if r.get("message") == "metrics listening"]
        target = {"BEARER_GRPC_TARGET": server.target}
        token = cli.ok("token", "issue", "--client-id", "svc", env={**env, **target}).stdout
        cli.ok("token", "verify", "--audience", "orders", input=token, env=target)
        refused = cli("token", "verify", "--audience", "other", input=token, env=target)
        assert refused.returncode == 1, describe(refused)
        url = f"http://127.0.0.1:{line['port']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        assert server.stop() == 0
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    issued = (
        "bearer_grpc_tokens_issued_total",
        (("grant", "client_credentials"), ("interface", "grpc"), ("outcome", "issued")),
    )
    assert samples[issued] == 1
    active = (
        "bearer_grpc_verifications_total",
        (("interface", "grpc"), ("reason", "none"), ("result", "active")),
    )
    assert samples[active] == 1
    assert (
        sum(
            v
            for (name, labels), v in samples.items()
            if name == "bearer_grpc_verifications_total" and ("result", "inactive") in labels
        )
        == 1
    )
    assert token.strip() not in text and "svc" not in text
