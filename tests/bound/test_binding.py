"""The pure rule of certificate binding (RFC 8705 §3), and its hostile ``cnf`` values."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bearer_grpc.core.binding import bound_digest, check_binding, encode_thumbprint, thumbprint
from bearer_grpc.core.errors import TokenBindingMismatch

DER = b"0\x82\x01\x00 not really a certificate, but bytes are bytes"
DIGEST = hashlib.sha256(DER).digest()
X5T = base64.urlsafe_b64encode(DIGEST).decode().rstrip("=")
OTHER = hashlib.sha256(b"another certificate").digest()


def _claims(cnf: Any) -> dict[str, Any]:
    return {"sub": "alice", "cnf": cnf}


def _refusal(claims: dict[str, Any], certificate: bytes | None, **kwargs: bool) -> str:
    with pytest.raises(TokenBindingMismatch) as refused:
        check_binding(claims, certificate, **kwargs)
    assert refused.value.reason == "TOKEN_BINDING_MISMATCH"
    return refused.value.message


def test_thumbprint_is_unpadded_base64url_sha256_of_the_der() -> None:
    assert thumbprint(DER) == X5T
    assert len(X5T) == 43 and "=" not in X5T


def test_a_bound_token_with_its_certificate_is_accepted() -> None:
    check_binding(_claims({"x5t#S256": X5T}), DIGEST)
    check_binding(_claims({"x5t#S256": X5T}), DIGEST, required=True)


def test_a_bound_token_without_a_certificate_is_refused() -> None:
    assert _refusal(_claims({"x5t#S256": X5T}), None) == "client certificate required"


def test_a_bound_token_with_another_certificate_is_refused() -> None:
    assert _refusal(_claims({"x5t#S256": X5T}), OTHER) == "token bound to another certificate"


def test_an_unbound_token_is_allowed_unless_binding_is_required() -> None:
    check_binding({"sub": "alice"}, None)
    check_binding({"sub": "alice"}, DIGEST)
    message = _refusal({"sub": "alice"}, DIGEST, required=True)
    assert message == "certificate-bound token required"


@pytest.mark.parametrize(
    "cnf",
    [
        None,  # "cnf": null
        "x5t",
        [X5T],
        {},
        {"x5t#S256": None},
        {"x5t#S256": 1},
        {"x5t#S256": [X5T]},
        {"x5t#S256": DIGEST.hex()},  # hex, the common mistake
        {"x5t#S256": X5T + "="},  # padded
        {"x5t#S256": X5T[:-1]},
        {"x5t#S256": X5T + "A"},
        {"x5t#S256": base64.b64encode(b"\xfb" * 32).decode().rstrip("=")},  # + and /
        {"x5t#S256": X5T[:-1] + "\u0410"},  # a Cyrillic look-alike
        {"x5t#S256": X5T.lower()},
        {"X5T#S256": X5T},
        {"x5t": base64.urlsafe_b64encode(hashlib.sha1(DER).digest()).decode()},  # noqa: S324
        {"jkt": X5T},  # DPoP (RFC 9449): a constraint checked by proof, not by TLS
        {"jwk": {"kty": "EC"}},
        {"x5t#S256": X5T, "jkt": X5T},
    ],
    ids=repr,
)
def test_a_cnf_this_server_cannot_check_is_refused_even_with_the_certificate(cnf: Any) -> None:
    assert _refusal(_claims(cnf), DIGEST) == "unsupported token confirmation"


def test_a_non_canonical_last_character_is_refused() -> None:
    # 43 characters hold 258 bits: the last one's 2 low bits must be zero
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = last.index(X5T[-1])
    sloppy = X5T[:-1] + last[index | 1]
    assert base64.urlsafe_b64decode(sloppy + "=") == DIGEST  # the same bytes...
    with pytest.raises(TokenBindingMismatch):  # ...but not the same string
        bound_digest({"x5t#S256": sloppy})


@given(st.binary(min_size=32, max_size=32))
def test_every_digest_round_trips(digest: bytes) -> None:
    assert bound_digest({"x5t#S256": encode_thumbprint(digest)}) == digest


@given(st.text(max_size=60))
def test_any_string_is_refused_or_is_the_canonical_spelling_of_a_digest(value: str) -> None:
    try:
        digest = bound_digest({"x5t#S256": value})
    except TokenBindingMismatch:
        return
    assert len(digest) == 32 and encode_thumbprint(digest) == value


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists, max_leaves=5))
def test_any_other_json_cnf_is_refused(cnf: Any) -> None:
    with pytest.raises(TokenBindingMismatch):
        check_binding(_claims(cnf), DIGEST)
