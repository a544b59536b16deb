"""GetJwks, staged key rotation, other algorithms, and private keys sealed at rest."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from bearer_grpc.core.errors import KeyMaterialError
from bearer_grpc.core.keys import Algorithm, KeyEncryptionKey, PublicKeySet
from bearer_grpc.core.tokens import TokenVerifier
from bearer_grpc.service.admin import Admin
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import sqlite_url
from bearer_grpc.testing import FrozenClock
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import RunningService, jwt_segment, running_service, verify, wait_until

_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def _jwks(service: RunningService) -> dict[str, Any]:
    response = service.stub().GetJwks(pb.GetJwksRequest(), timeout=10)
    return json.loads(response.jwks_json)  # type: ignore[no-any-return]


def _kids(service: RunningService) -> list[str]:
    return [key["kid"] for key in _jwks(service)["keys"]]


def _rfc7638(jwk: dict[str, Any]) -> str:
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _kid_of(token: str) -> str:
    return str(jwt_segment(token, 0)["kid"])


# -- GetJwks ----------------------------------------------------------------------------


def test_jwks_publishes_issuer_and_public_keys_only(shared_service: RunningService) -> None:
    response = shared_service.stub().GetJwks(pb.GetJwksRequest(), timeout=10)
    assert response.issuer == "bearer-grpc"
    keys = json.loads(response.jwks_json)["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert not _PRIVATE_MEMBERS & set(key)
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert key["kid"] == _rfc7638(key)


def test_jwks_issuer_follows_settings(data_dir: Path) -> None:
    settings = ServiceSettings(issuer="https://tokens.example")
    with running_service(sqlite_url(data_dir), settings=settings) as service:
        response = service.stub().GetJwks(pb.GetJwksRequest(), timeout=10)
        assert response.issuer == "https://tokens.example"
        issued = service.issue(service.add_client())
        assert jwt_segment(issued.access_token, 1)["iss"] == "https://tokens.example"


def test_token_verifies_locally_with_published_jwks(service: RunningService) -> None:
    client = service.add_client()
    issued = service.issue(client)
    response = service.stub().GetJwks(pb.GetJwksRequest(), timeout=10)
    verifier = TokenVerifier(
        PublicKeySet.from_json(response.jwks_json),
        issuer=response.issuer,
        clock=time.time,
    )
    principal = verifier.verify(issued.access_token, audience="orders")
    assert principal.subject == client.client_id


# -- rotation ---------------------------------------------------------------------------


def test_staged_rotation_publishes_before_signing_and_retires_after_last_token(
    clocked_service: RunningService, clock: FrozenClock
) -> None:
    service = clocked_service
    settings = service.authority.settings
    t0 = int(clock.now)
    client = service.add_client()
    old_kid = _kid_of(service.issue(client).access_token)
    assert _kids(service) == [old_kid]

    new = Admin(service.store, clock=clock).rotate_key(algorithm="ES256", delay=60, kek=None)
    service.authority.sync()
    assert set(_kids(service)) == {old_kid, new.kid}  # published before it signs
    assert _kid_of(service.issue(client).access_token) == old_kid

    clock.now = t0 + 59
    last_old = service.issue(client).access_token  # the last token the old key signs
    assert _kid_of(last_old) == old_kid

    clock.now = t0 + 60
    first_new = service.issue(client).access_token
    assert _kid_of(first_new) == new.kid
    service.authority.sync()
    assert set(_kids(service)) == {old_kid, new.kid}
    assert verify(service.stub(), last_old).active
    assert verify(service.stub(), first_new).active

    valid_until = t0 + 60 + settings.access_ttl + settings.leeway  # of the last old token
    clock.now = valid_until - 2  # the last old-key token is still valid here
    service.authority.sync()
    assert old_kid in _kids(service)
    assert verify(service.stub(), last_old).active

    retire_at = valid_until + settings.key_publish_delay  # and the pre-publish window after
    clock.now = retire_at - 1
    service.authority.sync()
    assert old_kid in _kids(service)

    clock.now = retire_at
    service.authority.sync()
    assert _kids(service) == [new.kid]
    assert not verify(service.stub(), last_old).active
    fresh = service.issue(client).access_token
    assert _kid_of(fresh) == new.kid
    assert verify(service.stub(), fresh).active


def test_rotation_written_elsewhere_reaches_the_server_through_sync(data_dir: Path) -> None:
    settings = ServiceSettings(sync_interval=0.1)
    with running_service(sqlite_url(data_dir), settings=settings) as service:
        client = service.add_client()
        old_kid = _kid_of(service.issue(client).access_token)
        new = service.admin.rotate_key(algorithm="ES256", delay=1, kek=None)
        wait_until(lambda: _kid_of(service.issue(client).access_token) == new.kid, timeout=4)
        assert set(_kids(service)) == {old_kid, new.kid}


@pytest.mark.parametrize("algorithm", ["EdDSA", "RS256"])
def test_other_algorithms_issue_tokens_that_verify(data_dir: Path, algorithm: Algorithm) -> None:
    settings = ServiceSettings(key_algorithm=algorithm)
    with running_service(sqlite_url(data_dir), settings=settings) as service:
        issued = service.issue(service.add_client())
        header = jwt_segment(issued.access_token, 0)
        assert (header["alg"], header["typ"]) == (algorithm, "at+jwt")
        (key,) = _jwks(service)["keys"]
        assert key["alg"] == algorithm
        assert key["kid"] == header["kid"] == _rfc7638(key)
        assert not _PRIVATE_MEMBERS & set(key)
        assert verify(service.stub(), issued.access_token).active


def test_rotation_to_another_algorithm(clocked_service: RunningService, clock: FrozenClock) -> None:
    client = clocked_service.add_client()
    before = clocked_service.issue(client).access_token
    Admin(clocked_service.store, clock=clock).rotate_key(algorithm="EdDSA", delay=1, kek=None)
    clocked_service.authority.sync()
    clock.advance(1)
    after = clocked_service.issue(client).access_token
    assert jwt_segment(after, 0)["alg"] == "EdDSA"
    stub = clocked_service.stub()
    assert verify(stub, before).active and verify(stub, after).active


def test_rotation_without_delay_takes_over_by_the_next_second_whatever_its_kid(
    clocked_service: RunningService, clock: FrozenClock
) -> None:
    """Keys take over in the order they were added, never by kid: ``rotate_key(delay=0)``
    in the same second as the current key gets a strictly later ``not_before`` (no tie
    for the kid order to break) and signs from then on."""
    admin = Admin(clocked_service.store, clock=clock)
    kids = [record.kid for record in clocked_service.store.list_keys()]
    # Thumbprints are random; a new kid sorts below an existing one within a few tries.
    for _ in range(20):
        new = admin.rotate_key(algorithm="ES256", delay=0, kek=None)
        if new.kid < max(kids):
            break
        kids.append(new.kid)
    assert new.kid < max(kids)
    starts = [record.not_before for record in clocked_service.store.list_keys()]
    assert starts == sorted(set(starts)), "not_before must strictly increase with each key"
    clock.now = float(new.not_before)
    clocked_service.authority.sync()
    issued = clocked_service.issue(clocked_service.add_client())
    assert _kid_of(issued.access_token) == new.kid, "the newest key does not sign"


# -- keys at rest ---------------------------------------------------------------------------

_KEK = KeyEncryptionKey(b"0123456789abcdef0123456789abcdef")


def test_keys_sealed_with_kek_and_restart_with_same_kek(data_dir: Path) -> None:
    url = sqlite_url(data_dir)
    with running_service(url, kek=_KEK) as service:
        issued = service.issue(service.add_client())
        records = service.store.list_keys()
        assert len(records) == 1
        assert records[0].private_key.startswith(b"bgk1:")
        assert b"PRIVATE KEY" not in records[0].private_key
    with running_service(url, kek=KeyEncryptionKey(b"0123456789abcdef0123456789abcdef")) as again:
        assert verify(again.stub(), issued.access_token).active
        assert _kid_of(again.issue(again.add_client("second")).access_token) == _kid_of(
            issued.access_token
        )


def test_restart_without_kek_fails_clearly(data_dir: Path) -> None:
    url = sqlite_url(data_dir)
    with running_service(url, kek=_KEK):
        pass
    with pytest.raises(KeyMaterialError, match="key-encryption key"), running_service(url):
        pass


def test_restart_with_wrong_kek_fails_clearly(data_dir: Path) -> None:
    url = sqlite_url(data_dir)
    with running_service(url, kek=_KEK):
        pass
    wrong = KeyEncryptionKey(b"another key-encryption key, 32+ bytes")
    with (
        pytest.raises(KeyMaterialError, match="key-encryption key"),
        running_service(url, kek=wrong),
    ):
        pass


def test_keys_without_kek_are_plain_pkcs8(service: RunningService) -> None:
    (record,) = service.store.list_keys()
    assert record.private_key.startswith(b"-----BEGIN PRIVATE KEY-----")
