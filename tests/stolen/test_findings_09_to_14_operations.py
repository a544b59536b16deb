"""Findings 9 to 14: what an operator configures and runs.

9: a key-encryption key added later seals the keys in the clear; its file must be private.
10: an unsafe data directory is refused, or repaired with a warning.
11: the PostgreSQL password stays out of argv.
12: ``keys rotate --delay`` is bounded; ``keys withdraw`` removes a staged key.
13: a refresh family ends after an absolute session lifetime.
14: a verifier stops trusting a key within a second of the TokenService dropping it.
"""

from __future__ import annotations

import json
import math
import os
import stat
import time
from pathlib import Path

import grpc
import pytest
from sqlalchemy.engine import make_url

from bearer_grpc import Verifier
from bearer_grpc.core.errors import KeyMaterialError, TokenInvalid
from bearer_grpc.core.keys import KeyEncryptionKey, SigningKey, is_sealed
from bearer_grpc.core.tokens import issue_access_token
from bearer_grpc.service.admin import Admin
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import open_store
from bearer_grpc.testing import FrozenClock
from tests.harness import (
    Cli,
    RunningService,
    add_user,
    assert_one_line_error,
    password_request,
    pg_dsn,
    pg_schema_url,
    refresh_request,
    running_service,
    wait_until,
)
from tests.stolen._support import grpc_code

KEK = b"k" * 32

# -- finding 9 -------------------------------------------------------------------------------


def test_finding_9_a_kek_added_later_seals_the_keys_left_in_the_clear(backend_url: str) -> None:
    store = open_store(backend_url)
    try:
        TokenAuthority(store).start()  # first start without a key-encryption key
        assert not any(is_sealed(r.private_key) for r in store.list_keys())
        kek = KeyEncryptionKey(KEK)
        with_kek = TokenAuthority(store, kek=kek)
        with_kek.start()  # the key-encryption key appears
        records = store.list_keys()
        assert records and all(is_sealed(r.private_key) for r in records)
        for record in records:  # still the same keys, now only loadable with the KEK
            SigningKey.load(record.kid, record.alg, record.private_key, kek)
        with pytest.raises(KeyMaterialError):
            TokenAuthority(store).start()  # without it: refused, never used unsealed
    finally:
        store.close()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_finding_9_a_kek_file_others_may_read_is_refused(
    cli: Cli, tmp_path: Path, mode: int
) -> None:
    kek = tmp_path / "kek"
    kek.write_bytes(KEK)
    kek.chmod(mode)
    line = assert_one_line_error(cli("keys", "rotate", "--key-encryption-key-file", str(kek)))
    assert "chmod 600" in line and "kkkk" not in line
    kek.chmod(0o600)
    cli.ok("keys", "rotate", "--key-encryption-key-file", str(kek))


# -- finding 10 ------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_finding_10_a_data_directory_others_may_write_is_refused(cli: Cli, tmp_path: Path) -> None:
    cli.ok("clients", "list")  # creates the data directory and the database
    data = tmp_path / "bearer-grpc-data"
    data.chmod(0o777)
    (data / "bearer-grpc.db").chmod(0o666)
    line = assert_one_line_error(cli("clients", "list"))
    assert "writable by others" in line
    data.chmod(0o700)
    line = assert_one_line_error(cli("clients", "list"))  # the database file too
    assert "writable by others" in line and "bearer-grpc.db" in line


@pytest.mark.process  # the warning on stderr, as a shell sees it
def test_finding_10_a_data_directory_others_may_read_is_made_private(
    cli: Cli, process_cli: Cli, tmp_path: Path
) -> None:
    cli.ok("clients", "list")
    data = tmp_path / "bearer-grpc-data"
    data.chmod(0o755)
    (data / "bearer-grpc.db").chmod(0o644)
    result = process_cli.ok("clients", "list")
    assert "made private" in result.stderr
    assert _mode(data) == 0o700 and _mode(data / "bearer-grpc.db") == 0o600


# -- finding 11 ------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.process  # the warning on stderr, as a shell sees it
def test_finding_11_the_postgres_password_comes_from_a_private_file(
    cli: Cli, process_cli: Cli, tmp_path: Path
) -> None:
    with pg_schema_url(pg_dsn()) as url:
        in_argv = make_url(url).set(password="hunter2-pw").render_as_string(hide_password=False)
        warned = process_cli.ok("clients", "list", "--store", in_argv)
        assert "--store-password-file" in warned.stderr and "hunter2" not in warned.stderr

        secret = tmp_path / "pgpass"
        secret.write_text("hunter2-pw\n")
        secret.chmod(0o644)
        line = assert_one_line_error(
            cli("clients", "list", "--store", url, "--store-password-file", str(secret))
        )
        assert "chmod 600" in line and "hunter2" not in line
        secret.chmod(0o600)
        quiet = cli.ok("clients", "list", "--store", url, "--store-password-file", str(secret))
        assert quiet.stderr == ""


def test_finding_11_the_readme_keeps_passwords_out_of_store_urls() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "tokens:PASSWORD@" not in readme
    assert "--store-password-file" in readme


# -- finding 12 ------------------------------------------------------------------------------


@pytest.mark.parametrize("delay", ["1" + "0" * 30, "1" + "0" * 12, "31d", "-5"])
def test_finding_12_keys_rotate_delay_is_bounded(cli: Cli, delay: str) -> None:
    line = assert_one_line_error(cli("keys", "rotate", "--delay", delay))
    assert "delay" in line


def test_finding_12_keys_withdraw_removes_a_staged_key_and_unblocks_rotation(cli: Cli) -> None:
    cli.ok("keys", "rotate", "--delay", "0")
    staged = json.loads(cli.ok("keys", "rotate", "--delay", "30d", "--json").stdout)
    cli.ok("keys", "withdraw", "--", staged["kid"])  # a kid may start with -
    kids = [k["kid"] for k in json.loads(cli.ok("keys", "list", "--json").stdout)]
    assert staged["kid"] not in kids
    after = json.loads(cli.ok("keys", "rotate", "--delay", "60", "--json").stdout)
    assert after["not_before"] < staged["not_before"]  # no longer held back
    signing = next(
        k["kid"]
        for k in json.loads(cli.ok("keys", "list", "--json").stdout)
        if k["state"] == "signing"
    )
    assert "signs already" in assert_one_line_error(cli("keys", "withdraw", "--", signing))
    assert "no key" in assert_one_line_error(cli("keys", "withdraw", "nonexistent"))


# -- finding 13 ------------------------------------------------------------------------------


def test_finding_13_a_session_ends_after_its_absolute_lifetime_however_it_is_used(
    backend_url: str,
) -> None:
    clock = FrozenClock(float(int(time.time())))
    settings = ServiceSettings(access_ttl=60, refresh_ttl=120, session_ttl=300)
    with running_service(backend_url, settings=settings, clock=clock) as service:
        add_user(service, "alice")
        stub = service.stub()
        current = stub.IssueToken(password_request("alice"), timeout=30)
        for _ in range(2):  # used well within the refresh lifetime, again and again
            clock.advance(100)
            current = stub.IssueToken(refresh_request(current.refresh_token), timeout=10)
        assert current.refresh_expires_in == 100  # never past the session's end
        clock.advance(100)
        last = refresh_request(current.refresh_token)
        assert grpc_code(lambda: stub.IssueToken(last, timeout=10)) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        assert stub.IssueToken(password_request("alice"), timeout=30).refresh_token  # log in


def test_finding_13_the_session_lifetime_is_validated() -> None:
    with pytest.raises(ValueError, match="session"):
        ServiceSettings(refresh_ttl=3600, session_ttl=1800)


# -- finding 14 ------------------------------------------------------------------------------


def test_finding_14_a_verifier_stops_trusting_a_withdrawn_key_within_a_second(
    any_service: RunningService, backend_url: str
) -> None:
    cli_store = open_store(backend_url)
    try:
        admin = Admin(cli_store)
        staged = admin.rotate_key(algorithm="ES256", delay=3600, kek=None)
        key = SigningKey.load(staged.kid, staged.alg, staged.private_key, None)
        token = issue_access_token(
            key,
            issuer=any_service.authority.settings.issuer,
            subject="someone",
            audience="orders",
            scopes=[],
            client_id="someone",
            lifetime=300,
            now=math.floor(time.time()),
        ).token
        jwks = any_service.authority.jwks
        wait_until(lambda: staged.kid in jwks(), timeout=5)  # the service publishes it
        with Verifier.from_token_service(any_service.target, audience="orders") as verifier:
            assert _accepts(verifier, token)  # published: trusted
            admin.withdraw_key(staged.kid)
            withdrawn = time.monotonic()
            wait_until(lambda: staged.kid not in (verifier.local.keys or {}), timeout=1.5)
            lag = time.monotonic() - withdrawn
            with pytest.raises(TokenInvalid):
                verifier.verify(token)
        assert lag < 1.5
    finally:
        cli_store.close()


def _accepts(verifier: Verifier, token: str) -> bool:
    try:
        verifier.verify(token)
    except TokenInvalid:
        return False
    return True


def test_cli_files_are_private_after_all(cli: Cli, tmp_path: Path) -> None:
    """(The repairs above leave nothing readable by others.)"""
    cli.ok("clients", "list")
    for path in (tmp_path / "bearer-grpc-data").iterdir():
        assert _mode(path) & 0o077 == 0, os.fspath(path)
