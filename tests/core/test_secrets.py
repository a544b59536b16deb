"""Client secrets, passwords and refresh tokens.

scrypt costs ~0.35 s per call: this file runs it six times (one hash, four verifies, and
the dummy hash built on the first unknown user), seven once unusable stored parameters
fall back to the dummy hash as the docstring of verify_password promises.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from bearer_grpc.core.secrets import (
    SecretHasher,
    hash_password,
    new_id,
    new_secret,
    refresh_token_hash,
    verify_password,
)

PASSWORD = "correct horse battery staple"
HASHER_KEY = b"per-deployment-hashing-key-0123456789"


@pytest.fixture(scope="module")
def stored_password() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def hasher() -> SecretHasher:
    return SecretHasher(HASHER_KEY)


# --- new_secret / new_id ----------------------------------------------------------------


def test_new_secret_has_256_bits_in_43_base64url_chars() -> None:
    secret = new_secret()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret)
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32


def test_new_secret_values_are_distinct() -> None:
    assert len({new_secret() for _ in range(100)}) == 100


def test_new_id_has_prefix_and_128_bits_and_never_looks_like_a_flag() -> None:
    value = new_id("rt_")
    assert value.startswith("rt_")
    assert len(bytes.fromhex(value[3:])) == 16
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert not any(i.startswith("-") for i in ids)


# --- SecretHasher -------------------------------------------------------------------------


def test_secret_hasher_verifies_the_right_secret(hasher: SecretHasher) -> None:
    secret = new_secret()
    assert hasher.verify(secret, hasher.hash(secret)) is True


def test_secret_hasher_rejects_a_wrong_secret(hasher: SecretHasher) -> None:
    stored = hasher.hash(new_secret())
    assert hasher.verify(new_secret(), stored) is False


def test_secret_hasher_unknown_client_is_false(hasher: SecretHasher) -> None:
    assert hasher.verify(new_secret(), None) is False
    assert hasher.verify("", None) is False


@pytest.mark.parametrize("stored", ["", "garbage", "hmac-sha256$", "hmac-sha256$" + "0" * 64])
def test_secret_hasher_garbage_stored_value_is_false(hasher: SecretHasher, stored: str) -> None:
    assert hasher.verify(new_secret(), stored) is False


def test_secret_hasher_is_keyed(hasher: SecretHasher) -> None:
    secret = new_secret()
    other = SecretHasher(b"another-deployment-key-0123456789")
    assert other.hash(secret) != hasher.hash(secret)
    assert other.verify(secret, hasher.hash(secret)) is False


def test_secret_hasher_hash_is_deterministic_hmac_sha256(hasher: SecretHasher) -> None:
    stored = hasher.hash("s3cret")
    assert stored == hasher.hash("s3cret")
    assert re.fullmatch(r"hmac-sha256\$[0-9a-f]{64}", stored)
    assert "s3cret" not in stored


def test_secret_hasher_repr_hides_key(hasher: SecretHasher) -> None:
    text = repr(hasher) + str(hasher)
    assert "hidden" in text
    for form in (HASHER_KEY.decode(), HASHER_KEY.hex(), base64.b64encode(HASHER_KEY).decode()):
        assert form[:12] not in text


# --- passwords (scrypt) -------------------------------------------------------------------


def test_hash_password_format(stored_password: str) -> None:
    assert re.fullmatch(
        r"scrypt\$131072\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}", stored_password
    )
    assert PASSWORD not in stored_password


def test_verify_password_right_password(stored_password: str) -> None:
    assert verify_password(PASSWORD, stored_password) is True


@pytest.mark.slow
def test_verify_password_wrong_password(stored_password: str) -> None:
    assert verify_password(PASSWORD + "!", stored_password) is False


@pytest.mark.slow
def test_verify_password_unknown_user_is_false() -> None:
    assert verify_password(PASSWORD, None) is False


def test_verify_password_unreadable_stored_value_is_false() -> None:
    assert verify_password(PASSWORD, "not-a-password-hash") is False


def test_verify_password_stored_value_with_unusable_parameters_is_false() -> None:
    # Readable shape, but n is not a power of two: hashlib.scrypt refuses it. The stored
    # value is unusable, which must read as "no match", not as an exception.
    assert verify_password(PASSWORD, "scrypt$0$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAA") is False


# --- refresh tokens -----------------------------------------------------------------------


def test_refresh_token_hash_is_sha256_hex() -> None:
    assert refresh_token_hash("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_refresh_token_hash_is_deterministic_and_distinct() -> None:
    value = new_secret()
    assert refresh_token_hash(value) == refresh_token_hash(value)
    assert refresh_token_hash(value) == hashlib.sha256(value.encode()).hexdigest()
    assert refresh_token_hash(value) != refresh_token_hash(new_secret())
    assert value not in refresh_token_hash(value)
