"""Secrets never leak: not into logs, statuses, error details, exceptions or ``repr``.

The whole life of every secret is exercised (client and user creation, the three
grants, verification, revocation, refresh-token reuse, wrong secrets, the CLI token
commands) with logging at DEBUG, and every text that left the code is searched for
every secret: access and refresh tokens (whole and their signature), the client secret,
the password, the key-encryption key, and the private signing key (PEM body and JWK
``d``). Files holding secrets are created owner-only. The CLI commands run
in-process (one of each; every refusal is covered by the in-process flow); the server
they talk to is the real ``bearer-grpc serve`` process.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import bearer_grpc
from bearer_grpc.cli import main as cli_main
from bearer_grpc.core.keys import KeyEncryptionKey, SigningKey
from bearer_grpc.core.secrets import new_secret
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import sqlite_url
from bearer_grpc.testing import path
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import (
    RunningService,
    echo_policy,
    json_lines,
    protect,
    running_server,
    running_service,
)

PASSWORD = "correct horse battery staple 9f3a"
AUDIENCE = "echo"


class Leaks:
    """Collects every text that left the code, and the secrets none may contain."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        self.secrets: dict[str, str] = {}

    def secret(self, name: str, value: str) -> str:
        """Remember ``value`` (and, for a JWS, its signature segment) as secret."""
        self.secrets[name] = value
        if value.count(".") == 2:
            self.secrets[f"{name} (signature)"] = value.rsplit(".", 1)[1]
        return value

    def saw(self, where: str, text: object) -> None:
        """Record a text (str of anything) that was shown outside."""
        self.texts.append((where, text if isinstance(text, str) else repr(text)))

    def saw_error(self, where: str, error: grpc.RpcError) -> None:
        """Record everything a failed call shows the caller."""
        self.saw(f"{where} details", error.details())
        self.saw(f"{where} debug", error.debug_error_string())
        self.saw(f"{where} str", str(error))
        for key, value in error.trailing_metadata() or ():
            shown = (
                base64.b64encode(value).decode() + repr(value)
                if isinstance(value, bytes)
                else value
            )
            self.saw(f"{where} trailer {key}", shown)

    def call(self, where: str, action: Callable[[], Any]) -> Any:
        """Run a call; record its error (if any) and return its result or None."""
        try:
            return action()
        except grpc.RpcError as error:
            self.saw_error(where, error)
            return None

    def assert_clean(self) -> None:
        """No recorded text contains any secret."""
        assert self.secrets and self.texts
        found = [
            f"{name} in {where}"
            for where, text in self.texts
            for name, value in self.secrets.items()
            if value and value in text
        ]
        assert not found, found


def _private_material(key: SigningKey) -> dict[str, str]:
    pem = key.export_private(None).decode()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    material = {"private key PEM body (start)": body[:48], "private key PEM body (end)": body[-48:]}
    if isinstance(key.private_key, ec.EllipticCurvePrivateKey):
        d = key.private_key.private_numbers().private_value.to_bytes(32, "big")
        material["private key JWK d"] = base64.urlsafe_b64encode(d).rstrip(b"=").decode()
    return material


def _log_texts(records: Iterable[logging.LogRecord]) -> Iterable[tuple[str, str]]:
    """Every record's message, every attribute (extras included) and its traceback."""
    for record in records:
        yield f"log {record.name}", record.getMessage()
        yield f"log {record.name} attributes", repr(record.__dict__)
        if record.exc_info and record.exc_info[1] is not None:
            yield (
                f"log {record.name} traceback",
                "".join(traceback.format_exception(record.exc_info[1])),
            )


def _flow(service: RunningService, leaks: Leaks, protected: grpc.Channel) -> None:
    stub = service.stub()
    admin = service.admin
    client = admin.add_client("hygiene-client", scopes=("echo.use",), audiences=(AUDIENCE,))
    leaks.secret("client secret", client.client_secret)
    admin.add_user("hygiene-user", PASSWORD, scopes=("echo.use",), audiences=(AUDIENCE,))
    leaks.saw("repr NewClient", client)
    leaks.saw("repr Admin", admin)

    by_client = stub.IssueToken(
        pb.IssueTokenRequest(
            client_credentials=pb.ClientCredentialsGrant(
                client_id=client.client_id, client_secret=client.client_secret
            ),
            audience=AUDIENCE,
        ),
        timeout=10,
    )
    access_1 = leaks.secret("access token (client)", by_client.access_token)
    by_password = stub.IssueToken(
        pb.IssueTokenRequest(
            password=pb.PasswordGrant(username="hygiene-user", password=PASSWORD),
            audience=AUDIENCE,
        ),
        timeout=10,
    )
    access_2 = leaks.secret("access token (password)", by_password.access_token)
    refresh_1 = leaks.secret("refresh token 1", by_password.refresh_token)
    refreshed = stub.IssueToken(
        pb.IssueTokenRequest(refresh_token=pb.RefreshTokenGrant(refresh_token=refresh_1)),
        timeout=10,
    )
    access_3 = leaks.secret("access token (refresh)", refreshed.access_token)
    leaks.secret("refresh token 2", refreshed.refresh_token)

    for token in (access_1, access_2, access_3, access_1[:-3], "garbage"):
        leaks.saw(
            "VerifyToken response",
            stub.VerifyToken(pb.VerifyTokenRequest(token=token, audience=AUDIENCE), timeout=10),
        )
    unary = protected.unary_unary(path("Unary"))
    for token in (access_1, access_1[:-3], access_2 + "x"):
        leaks.call(
            "protected call",
            lambda t=token: unary(b"hi", metadata=(("authorization", f"Bearer {t}"),), timeout=10),
        )

    revoke = stub.RevokeToken
    leaks.call("revoke by value", lambda: revoke(pb.RevokeTokenRequest(token=access_1), timeout=10))
    own_jti = stub.VerifyToken(
        pb.VerifyTokenRequest(token=access_3, audience=AUDIENCE), timeout=10
    ).token_id
    leaks.call(
        "revoke own by id",
        lambda: revoke(
            pb.RevokeTokenRequest(token_id=own_jti),
            metadata=(("authorization", f"Bearer {access_3}"),),
            timeout=10,
        ),
    )
    leaks.call(
        "revoke other by id, not admin",
        lambda: revoke(
            pb.RevokeTokenRequest(token_id="someone-else"),
            metadata=(("authorization", f"Bearer {access_2}"),),
            timeout=10,
        ),
    )
    leaks.call(
        "revoke garbage",
        lambda: revoke(pb.RevokeTokenRequest(token=access_2[:-4] + "AAAA"), timeout=10),
    )
    leaks.call(
        "protected call, revoked token",
        lambda: unary(b"hi", metadata=(("authorization", f"Bearer {access_1}"),), timeout=10),
    )

    bad = {
        "refresh reuse": pb.IssueTokenRequest(
            refresh_token=pb.RefreshTokenGrant(refresh_token=refresh_1)
        ),
        "wrong client secret": pb.IssueTokenRequest(
            client_credentials=pb.ClientCredentialsGrant(
                client_id=client.client_id, client_secret=client.client_secret[::-1]
            )
        ),
        "secret of unknown client": pb.IssueTokenRequest(
            client_credentials=pb.ClientCredentialsGrant(
                client_id="nobody", client_secret=client.client_secret
            )
        ),
        "wrong password": pb.IssueTokenRequest(
            password=pb.PasswordGrant(username="hygiene-user", password=PASSWORD + "!")
        ),
        "password of unknown user": pb.IssueTokenRequest(
            password=pb.PasswordGrant(username="nobody", password=PASSWORD)
        ),
        "secret as scope": pb.IssueTokenRequest(
            client_credentials=pb.ClientCredentialsGrant(
                client_id=client.client_id, client_secret=client.client_secret
            ),
            scopes=[client.client_secret],
        ),
        "token as audience": pb.IssueTokenRequest(
            client_credentials=pb.ClientCredentialsGrant(
                client_id=client.client_id, client_secret=client.client_secret
            ),
            audience=access_2,
        ),
    }
    for where, request in bad.items():
        assert leaks.call(where, lambda r=request: stub.IssueToken(r, timeout=10)) is None, where
    leaks.secret("wrong password", PASSWORD + "!")


@pytest.mark.slow
def test_in_process_flow_leaks_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    leaks = Leaks()
    kek_material = leaks.secret("key-encryption key", new_secret())
    kek = KeyEncryptionKey(kek_material.encode())
    settings = ServiceSettings(issuer="https://hygiene.test")
    with running_service(sqlite_url(tmp_path / "data"), settings=settings, kek=kek) as service:
        key = service.authority.keys.signing_key(10**10)
        for name, value in _private_material(key).items():
            leaks.secret(name, value)
        verifier = bearer_grpc.Verifier.from_token_service(service.target, audience=AUDIENCE)
        with verifier, protect("sync", verifier, echo_policy()) as protected:
            _flow(service, leaks, protected.channel)
            leaks.saw("repr Verifier", verifier)
            leaks.saw("repr interceptor", protected.interceptor)
        for name, obj in {
            "TokenServer": service.server,
            "TokenAuthority": service.authority,
            "KeyRing": service.authority.keys,
            "SecretHasher": service.authority.hasher,
            "TokenVerifier": service.authority.verifier,
            "SigningKey": key,
            "KeyEncryptionKey": kek,
            "SqlStore": service.store,
        }.items():
            leaks.saw(f"repr {name}", obj)
            leaks.saw(f"str {name}", str(obj))
    leaks.texts.extend(_log_texts(caplog.records))
    assert any(r.name.startswith("bearer_grpc") for r in caplog.records), "nothing was logged"
    leaks.assert_clean()


def _owner_only(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


@pytest.mark.process
def test_cli_and_server_process_leak_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The CLI commands run in this process (``bearer_grpc.cli.main``: output and logs
    captured); ``serve`` is the real executable, its stderr read at DEBUG."""
    caplog.set_level(logging.DEBUG)
    leaks = Leaks()
    data = tmp_path / "data"
    kek_file = tmp_path / "kek"
    kek_file.write_text(leaks.secret("key-encryption key", new_secret()))
    kek_file.chmod(0o600)
    store = ("--data-dir", str(data), "--key-encryption-key-file", str(kek_file))

    def run(where: str, *args: str, ok: bool = True, **env: str) -> str:
        with monkeypatch.context() as patched:
            for name, value in env.items():
                patched.setenv(f"BEARER_GRPC_{name}", value)
            status = cli_main(list(args))
        out, err = capsys.readouterr()
        assert (status == 0) == ok, (where, err)
        leaks.saw(f"CLI stderr: {where}", err)
        return out

    added = run("clients add", "clients", "add", "cli-client", "--scopes", "echo.use",
                "--audiences", AUDIENCE, "--json", *store)  # fmt: skip
    secret = leaks.secret("client secret", json.loads(added)["client_secret"])
    run("users add", "users", "add", "cli-user", "--scopes", "echo.use", "--audiences",
        AUDIENCE, *store, PASSWORD=PASSWORD)  # fmt: skip
    leaks.secret("password", PASSWORD)
    leaks.saw("clients list", run("clients list", "clients", "list", *store))

    with running_server(tmp_path, *store, "--log-level", "debug") as server:
        target = ("--target", server.target, "--json")
        issued = json.loads(run("issue client", "token", "issue", "--client-id", "cli-client",
                                "--audience", AUDIENCE, *target, CLIENT_SECRET=secret))  # fmt: skip
        leaks.secret("access token (client)", issued["access_token"])
        by_password = json.loads(run("issue password", "token", "issue", "--username",
                                     "cli-user", "--audience", AUDIENCE, *target,
                                     PASSWORD=PASSWORD))  # fmt: skip
        access = leaks.secret("access token (password)", by_password["access_token"])
        refresh = leaks.secret("refresh token 1", by_password["refresh_token"])
        refreshed = json.loads(run("issue refresh", "token", "issue", "--refresh", *target,
                                   REFRESH_TOKEN=refresh))  # fmt: skip
        leaks.secret("refresh token 2", refreshed["refresh_token"])
        leaks.secret("access token (refresh)", refreshed["access_token"])
        leaks.saw("verify stdout", run("verify", "token", "verify", "--audience", AUDIENCE,
                                       *target, TOKEN=access))  # fmt: skip
        run("revoke", "token", "revoke", *target, TOKEN=issued["access_token"])
        run("refresh reuse", "token", "issue", "--refresh", *target, ok=False,
            REFRESH_TOKEN=refresh)  # fmt: skip
        run("wrong secret", "token", "issue", "--client-id", "cli-client", *target, ok=False,
            CLIENT_SECRET=secret[::-1])  # fmt: skip
        with server.channel() as channel:
            jwks = pb_grpc.TokenServiceStub(channel).GetJwks(pb.GetJwksRequest(), timeout=10)
        assert '"d"' not in jwks.jwks_json and '"k"' not in jwks.jwks_json
        server.stop()
        leaks.saw("server stderr", server.stderr())
        assert json_lines(server.stderr()), "the server logged nothing"
    leaks.texts.extend(_log_texts(caplog.records))
    leaks.assert_clean()

    database = data / "bearer-grpc.db"
    assert database.exists()
    assert stat.S_IMODE(data.stat().st_mode) & 0o077 == 0, oct(data.stat().st_mode)
    for file in data.iterdir():
        assert _owner_only(file), (file.name, oct(file.stat().st_mode))
    sealed = database.read_bytes()
    assert b"-----BEGIN PRIVATE KEY-----" not in sealed, "private key stored unsealed"
    assert os.access(kek_file, os.R_OK)
