"""Signing keys, RFC 7638 kids, private keys at rest and public key set hygiene."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from bearer_grpc.core.errors import KeyMaterialError
from bearer_grpc.core.keys import (
    ALGORITHMS,
    KeyEncryptionKey,
    PublicKeySet,
    SigningKey,
    is_sealed,
    thumbprint,
)

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
KEK_MATERIAL = b"k" * 16 + b"e" * 16
OTHER_KEK_MATERIAL = b"x" * 32

# RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_KEY = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4v"
        "MQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

KEY_TYPES = {"ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519"), "RS256": ("RSA", None)}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def int_b64url(value: int, length: int | None = None) -> str:
    return b64url(value.to_bytes(length or (value.bit_length() + 7) // 8, "big"))


def independent_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 §3.2, written out again: required members only, sorted, no whitespace."""
    required = {
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
        "RSA": ("e", "kty", "n"),
    }
    members = {name: jwk[name] for name in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(canonical).digest())


def pem_body_lines(key: SigningKey) -> list[str]:
    pem = key.export_private(None).decode("ascii")
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def private_secrets(key: SigningKey) -> list[str]:
    """The private scalar(s) in base64url, hex and decimal, plus the PEM body lines."""
    private: Any = key.private_key
    if isinstance(private, ec.EllipticCurvePrivateKey):
        ints = [private.private_numbers().private_value]
        raw = [ints[0].to_bytes(32, "big")]
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        raw = [
            private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        ]
        ints = [int.from_bytes(raw[0], "big")]
    else:
        numbers = private.private_numbers()
        ints = [numbers.d, numbers.p, numbers.q]
        raw = [i.to_bytes((i.bit_length() + 7) // 8, "big") for i in ints]
    found = pem_body_lines(key)
    for value, data in zip(ints, raw, strict=True):
        found += [b64url(data), data.hex(), str(value)]
    return found


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        # A 16-character slice is enough to identify leaked material.
        assert secret[:16] not in text


@pytest.fixture(params=ALGORITHMS)
def key(request: pytest.FixtureRequest, signing_keys: dict[str, SigningKey]) -> SigningKey:
    return signing_keys[request.param]


@pytest.fixture(scope="module")
def kek() -> KeyEncryptionKey:
    return KeyEncryptionKey(KEK_MATERIAL)


# --- generate, kid, sign --------------------------------------------------------------


def test_generate_binds_the_key_to_its_algorithm(key: SigningKey) -> None:
    kty, crv = KEY_TYPES[key.alg]
    assert key.jwk["alg"] == key.alg
    assert key.jwk["kty"] == kty
    assert key.jwk.get("crv") == crv
    assert key.jwk["use"] == "sig"


def test_generated_public_jwk_has_no_private_members(key: SigningKey) -> None:
    assert not set(PRIVATE_MEMBERS) & set(key.jwk)


def test_generated_rsa_key_is_at_least_2048_bits(signing_keys: dict[str, SigningKey]) -> None:
    private = signing_keys["RS256"].private_key
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size >= 2048


def test_generate_makes_fresh_keys() -> None:
    assert SigningKey.generate("ES256").kid != SigningKey.generate("ES256").kid


def test_generate_default_is_es256() -> None:
    assert SigningKey.generate().alg == "ES256"


def test_generate_unsupported_algorithm_fails() -> None:
    with pytest.raises(KeyMaterialError):
        SigningKey.generate("HS256")  # type: ignore[arg-type]


def test_kid_is_rfc7638_thumbprint(key: SigningKey) -> None:
    assert key.kid == key.jwk["kid"]
    assert key.kid == independent_thumbprint(dict(key.jwk))
    assert key.kid == thumbprint(key.jwk)


def test_thumbprint_of_rfc7638_example_key() -> None:
    assert independent_thumbprint(RFC7638_KEY) == RFC7638_THUMBPRINT  # the helper is right
    assert thumbprint(RFC7638_KEY) == RFC7638_THUMBPRINT


def test_thumbprint_ignores_optional_members() -> None:
    bare = {k: RFC7638_KEY[k] for k in ("kty", "n", "e")}
    assert thumbprint({**bare, "use": "sig", "kid": "other", "alg": "PS512"}) == RFC7638_THUMBPRINT


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "oct", "k": "AAAA"},
        {"kty": "RSA", "n": "AAAA"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA"},
        {"kty": "RSA", "n": "AAAA", "e": 65537},
        {},
    ],
    ids=["oct", "rsa-no-e", "ec-no-y", "rsa-int-e", "empty"],
)
def test_thumbprint_rejects_unknown_type_or_missing_member(jwk: dict[str, Any]) -> None:
    with pytest.raises(KeyMaterialError):
        thumbprint(jwk)


def test_signature_verifies_with_pyjwt_and_the_public_jwk(key: SigningKey) -> None:
    claims = {"sub": "svc", "n": 1}
    token = key.sign(claims)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    decoded = jwt.decode(token, jwt.PyJWK(dict(key.jwk)), algorithms=[key.alg])
    assert decoded == claims


def test_signature_does_not_verify_with_another_key(key: SigningKey) -> None:
    other = SigningKey.generate(key.alg)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(key.sign({"sub": "x"}), jwt.PyJWK(dict(other.jwk)), algorithms=[key.alg])


# --- export / load ------------------------------------------------------------------


def test_export_load_round_trip_plain(key: SigningKey) -> None:
    pem = key.export_private(None)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert not is_sealed(pem)
    loaded = SigningKey.load(key.kid, key.alg, pem, None)
    assert (loaded.kid, loaded.alg, dict(loaded.jwk)) == (key.kid, key.alg, dict(key.jwk))
    token = loaded.sign({"sub": "x"})
    assert jwt.decode(token, jwt.PyJWK(dict(key.jwk)), algorithms=[key.alg]) == {"sub": "x"}


def test_export_load_round_trip_sealed(key: SigningKey, kek: KeyEncryptionKey) -> None:
    sealed = key.export_private(kek)
    assert is_sealed(sealed)
    text = sealed.decode("latin-1")
    assert "PRIVATE KEY" not in text
    assert_no_secret(text, private_secrets(key))
    loaded = SigningKey.load(key.kid, key.alg, sealed, KeyEncryptionKey(KEK_MATERIAL))
    assert dict(loaded.jwk) == dict(key.jwk)


def test_sealing_is_randomized(signing_keys: dict[str, SigningKey], kek: KeyEncryptionKey) -> None:
    key = signing_keys["ES256"]
    assert key.export_private(kek) != key.export_private(kek)


def test_plain_key_loads_even_when_a_kek_is_configured(
    signing_keys: dict[str, SigningKey], kek: KeyEncryptionKey
) -> None:
    key = signing_keys["EdDSA"]
    assert SigningKey.load(key.kid, key.alg, key.export_private(None), kek).kid == key.kid


def _load_failure(*args: Any) -> KeyMaterialError:
    with pytest.raises(KeyMaterialError) as info:
        SigningKey.load(*args)
    return info.value


def _assert_error_has_no_material(err: KeyMaterialError, key: SigningKey) -> None:
    secrets = [*private_secrets(key), KEK_MATERIAL.decode(), OTHER_KEK_MATERIAL.decode()]
    assert_no_secret(str(err), secrets)
    assert_no_secret(repr(err), secrets)


def test_load_sealed_without_kek_fails(key: SigningKey, kek: KeyEncryptionKey) -> None:
    err = _load_failure(key.kid, key.alg, key.export_private(kek), None)
    _assert_error_has_no_material(err, key)


def test_load_sealed_with_wrong_kek_fails(key: SigningKey, kek: KeyEncryptionKey) -> None:
    wrong = KeyEncryptionKey(OTHER_KEK_MATERIAL)
    err = _load_failure(key.kid, key.alg, key.export_private(kek), wrong)
    _assert_error_has_no_material(err, key)


def test_load_sealed_with_mismatched_kid_fails(key: SigningKey, kek: KeyEncryptionKey) -> None:
    # The kid is bound as associated data: a sealed key cannot be relabelled.
    err = _load_failure("other-kid", key.alg, key.export_private(kek), kek)
    _assert_error_has_no_material(err, key)


def test_load_sealed_damaged_fails(key: SigningKey, kek: KeyEncryptionKey) -> None:
    sealed = bytearray(key.export_private(kek))
    sealed[-1] ^= 1
    err = _load_failure(key.kid, key.alg, bytes(sealed), kek)
    _assert_error_has_no_material(err, key)


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
def test_load_with_mismatched_alg_fails(
    key: SigningKey, kek: KeyEncryptionKey, sealed: bool
) -> None:
    wrong_alg = next(a for a in ALGORITHMS if a != key.alg)
    data = key.export_private(kek if sealed else None)
    err = _load_failure(key.kid, wrong_alg, data, kek if sealed else None)
    _assert_error_has_no_material(err, key)


def test_load_with_mismatched_kid_fails(key: SigningKey) -> None:
    other = SigningKey.generate(key.alg)
    err = _load_failure(other.kid, key.alg, key.export_private(None), None)
    _assert_error_has_no_material(err, key)


@pytest.mark.parametrize("alg", ["HS256", "none", "es256", "ES384", ""])
def test_load_with_unsupported_alg_fails(signing_keys: dict[str, SigningKey], alg: str) -> None:
    key = signing_keys["ES256"]
    _load_failure(key.kid, alg, key.export_private(None), None)


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"],
    ids=["empty", "garbage", "bad-pem"],
)
def test_load_unreadable_private_key_fails(data: bytes) -> None:
    _load_failure("kid", "ES256", data, None)


def _pkcs8(private: Any) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_load_rejects_p384_key_as_es256() -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    _load_failure("kid", "ES256", _pkcs8(private), None)


def test_load_rejects_secp256k1_key_as_es256() -> None:
    private = ec.generate_private_key(ec.SECP256K1())
    numbers = private.public_key().public_numbers()
    # The kid a P-256-only encoder would compute for it, so only the curve check can refuse.
    kid = independent_thumbprint(
        {
            "kty": "EC",
            "crv": "P-256",
            "x": int_b64url(numbers.x, 32),
            "y": int_b64url(numbers.y, 32),
        }
    )
    _load_failure(kid, "ES256", _pkcs8(private), None)


def test_load_rejects_rsa_key_below_2048_bits() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (deliberately weak)
    numbers = private.public_key().public_numbers()
    kid = independent_thumbprint({"kty": "RSA", "n": int_b64url(numbers.n), "e": "AQAB"})
    _load_failure(kid, "RS256", _pkcs8(private), None)


# --- KeyEncryptionKey ------------------------------------------------------------------


@pytest.mark.parametrize(
    "material", [b"", b"x" * 31, b" " * 40, b"  " + b"x" * 31 + b"\n"], ids=repr
)
def test_kek_rejects_short_material(material: bytes) -> None:
    with pytest.raises(KeyMaterialError):
        KeyEncryptionKey(material)


def test_kek_accepts_32_bytes() -> None:
    kek = KeyEncryptionKey(b"\x01" * 32)
    assert kek.open("kid", kek.seal("kid", b"data")) == b"data"


def test_kek_open_with_other_kid_fails(kek: KeyEncryptionKey) -> None:
    with pytest.raises(KeyMaterialError):
        kek.open("b", kek.seal("a", b"data"))


# --- repr hygiene ---------------------------------------------------------------------


def test_signing_key_repr_hides_private_material(key: SigningKey) -> None:
    secrets = private_secrets(key)
    assert_no_secret(repr(key), secrets)
    assert_no_secret(str(key), secrets)
    assert key.kid in repr(key)


def test_kek_repr_hides_material(kek: KeyEncryptionKey) -> None:
    text = repr(kek) + str(kek)
    for form in (KEK_MATERIAL.decode(), KEK_MATERIAL.hex(), b64url(KEK_MATERIAL)):
        assert form[:16] not in text


# --- PublicKeySet -----------------------------------------------------------------------


def public_jwks(signing_keys: dict[str, SigningKey]) -> list[dict[str, Any]]:
    return [dict(k.jwk) for k in signing_keys.values()]


def test_key_set_binds_each_kid_to_its_algorithm(signing_keys: dict[str, SigningKey]) -> None:
    keyset = PublicKeySet({"keys": public_jwks(signing_keys)})
    assert len(keyset) == len(signing_keys)
    assert set(keyset) == {k.kid for k in signing_keys.values()}
    for key in signing_keys.values():
        assert keyset[key.kid].algorithm_name == key.alg
    assert keyset.get("unknown") is None


def test_key_set_verifies_what_the_key_signed(signing_keys: dict[str, SigningKey]) -> None:
    keyset = PublicKeySet({"keys": public_jwks(signing_keys)})
    for key in signing_keys.values():
        pyjwk = keyset[key.kid]
        token = key.sign({"sub": "x"})
        assert jwt.decode(token, pyjwk, algorithms=[pyjwk.algorithm_name]) == {"sub": "x"}


def test_key_set_accepts_an_empty_set() -> None:
    assert len(PublicKeySet({"keys": []})) == 0


def _reject(jwks: Any) -> None:
    with pytest.raises(KeyMaterialError):
        PublicKeySet(jwks)


def _es256(signing_keys: dict[str, SigningKey]) -> dict[str, Any]:
    return dict(signing_keys["ES256"].jwk)


def test_key_set_rejects_duplicate_kid(signing_keys: dict[str, SigningKey]) -> None:
    es, ed = _es256(signing_keys), dict(signing_keys["EdDSA"].jwk)
    _reject({"keys": [es, {**ed, "kid": es["kid"]}]})
    _reject({"keys": [es, dict(es)]})


@pytest.mark.parametrize("member", PRIVATE_MEMBERS)
def test_key_set_rejects_private_members(signing_keys: dict[str, SigningKey], member: str) -> None:
    _reject({"keys": [{**_es256(signing_keys), member: "AAAA"}]})


def test_key_set_rejects_symmetric_key() -> None:
    _reject({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"}]})


@pytest.mark.parametrize("kid", [None, "", 1, ["a"], {"a": 1}, True], ids=repr)
def test_key_set_rejects_missing_or_non_string_kid(
    signing_keys: dict[str, SigningKey], kid: Any
) -> None:
    jwk = _es256(signing_keys)
    if kid is None:
        del jwk["kid"]
    else:
        jwk["kid"] = kid
    _reject({"keys": [jwk]})


@pytest.mark.parametrize(
    "alg", [None, "", "none", "HS256", "ES384", "RS512", "PS256", "es256", 1, ["ES256"]], ids=repr
)
def test_key_set_rejects_missing_or_unsupported_alg(
    signing_keys: dict[str, SigningKey], alg: Any
) -> None:
    jwk = _es256(signing_keys)
    if alg is None:
        del jwk["alg"]
    else:
        jwk["alg"] = alg
    _reject({"keys": [jwk]})


@pytest.mark.parametrize(
    ("source", "alg", "changes"),
    [
        ("EdDSA", "ES256", {}),
        ("ES256", "EdDSA", {}),
        ("ES256", "RS256", {}),
        ("RS256", "ES256", {}),
        ("ES256", "ES256", {"crv": "P-384"}),
        ("ES256", "ES256", {"crv": "secp256k1"}),
        ("EdDSA", "EdDSA", {"crv": "X25519"}),
        ("EdDSA", "EdDSA", {"crv": "Ed448"}),
        ("ES256", "ES256", {"kty": "OKP"}),
    ],
    ids=[
        "es256-with-okp",
        "eddsa-with-ec",
        "rs256-with-ec",
        "es256-with-rsa",
        "es256-p384",
        "es256-secp256k1",
        "eddsa-x25519",
        "eddsa-ed448",
        "es256-kty-okp",
    ],
)
def test_key_set_rejects_alg_kty_crv_mismatch(
    signing_keys: dict[str, SigningKey], source: str, alg: str, changes: dict[str, str]
) -> None:
    _reject({"keys": [{**signing_keys[source].jwk, "alg": alg, **changes}]})


@pytest.mark.parametrize("use", ["enc", "", "SIG", None], ids=repr)
def test_key_set_rejects_use_other_than_sig(
    signing_keys: dict[str, SigningKey], use: str | None
) -> None:
    _reject({"keys": [{**_es256(signing_keys), "use": use}]})


def test_key_set_accepts_absent_use(signing_keys: dict[str, SigningKey]) -> None:
    jwk = _es256(signing_keys)
    del jwk["use"]
    assert jwk["kid"] in PublicKeySet({"keys": [jwk]})


def test_key_set_rejects_key_ops_without_verify(signing_keys: dict[str, SigningKey]) -> None:
    # Security anchors K7 / Wycheproof rejectsWrongUse: `use` and `key_ops` must mean signatures.
    _reject({"keys": [{**_es256(signing_keys), "key_ops": ["encrypt"]}]})


def test_key_set_rejects_rsa_below_2048_bits() -> None:
    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()  # noqa: S505 (deliberately weak)
    jwk = {"kty": "RSA", "n": int_b64url(numbers.n), "e": int_b64url(numbers.e)}
    _reject({"keys": [{**jwk, "kid": independent_thumbprint(jwk), "alg": "RS256"}]})


def test_key_set_accepts_rsa_2048_bits() -> None:
    numbers = rsa.generate_private_key(65537, 2048).public_key().public_numbers()
    jwk = {"kty": "RSA", "n": int_b64url(numbers.n), "e": int_b64url(numbers.e)}
    assert "r" in PublicKeySet({"keys": [{**jwk, "kid": "r", "alg": "RS256"}]})


@pytest.mark.parametrize(
    "changes",
    [{"x": "!!!!"}, {"x": "AAAA"}, {"y": None}, {"x": 1}],
    ids=["x-not-base64url", "x-short", "no-y", "x-int"],
)
def test_key_set_rejects_unusable_key_material(
    signing_keys: dict[str, SigningKey], changes: dict[str, Any]
) -> None:
    jwk = {**_es256(signing_keys), **changes}
    jwk = {k: v for k, v in jwk.items() if v is not None}
    _reject({"keys": [jwk]})


def test_key_set_rejects_point_not_on_curve(signing_keys: dict[str, SigningKey]) -> None:
    jwk = _es256(signing_keys)
    _reject({"keys": [{**jwk, "y": jwk["x"]}]})


@pytest.mark.parametrize(
    "jwks",
    [
        {"keys": {}},
        {"keys": "x"},
        {"keys": None},
        {},
        [],
        None,
        "keys",
        {"keys": ["x"]},
        {"keys": [None]},
    ],
    ids=repr,
)
def test_key_set_rejects_malformed_sets(jwks: Any) -> None:
    _reject(jwks)


@pytest.mark.parametrize(
    "text", ["", "{", "not json", "[]", "null", '{"keys": 1}', "[" * 100_000], ids=lambda t: t[:10]
)
def test_key_set_from_json_rejects_invalid_documents(text: str) -> None:
    with pytest.raises(KeyMaterialError):
        PublicKeySet.from_json(text)


def test_key_set_json_round_trip(signing_keys: dict[str, SigningKey]) -> None:
    keyset = PublicKeySet({"keys": public_jwks(signing_keys)})
    again = PublicKeySet.from_json(keyset.to_json())
    assert set(again) == set(keyset)
    for kid in keyset:
        assert again[kid].algorithm_name == keyset[kid].algorithm_name


def test_key_set_to_json_has_no_private_members(signing_keys: dict[str, SigningKey]) -> None:
    text = PublicKeySet({"keys": public_jwks(signing_keys)}).to_json()
    for jwk in json.loads(text)["keys"]:
        assert not set(PRIVATE_MEMBERS) & set(jwk)
    for key in signing_keys.values():
        assert_no_secret(text, private_secrets(key))


def test_key_set_repr_names_kids_only(signing_keys: dict[str, SigningKey]) -> None:
    keyset = PublicKeySet({"keys": public_jwks(signing_keys)})
    text = repr(keyset)
    for key in signing_keys.values():
        assert key.kid in text
        assert key.jwk["x" if "x" in key.jwk else "n"][:16] not in text


@pytest.mark.parametrize("exponent", [b"\x01", b"\x02", b""], ids=["e=1", "e=2", "e-empty"])
def test_key_set_rejects_rsa_public_exponent_1_or_even(
    signing_keys: dict[str, SigningKey], exponent: bytes
) -> None:
    # Wycheproof rejectsPublicExponent1: with e = 1 every "signature" is its own message.
    jwk = dict(signing_keys["RS256"].jwk)
    jwk["e"] = base64.urlsafe_b64encode(exponent).rstrip(b"=").decode()
    _reject({"keys": [jwk]})


# --- PublicKeySet.skipping: remote key sets, one bad key left out ---------------------------


def test_skipping_leaves_out_bad_keys_with_reasons() -> None:
    good = dict(SigningKey.generate().jwk)
    no_alg = {k: v for k, v in SigningKey.generate("EdDSA").jwk.items() if k != "alg"}
    bad = [{**good, "kid": "priv", "d": "AA"}, {"kty": "oct", "kid": "h", "k": "AA"},
           {**good, "kid": "enc", "use": "enc"}, "not a key", {**good, "kid": 5}]  # fmt: skip
    keys, skipped = PublicKeySet.skipping({"keys": [*bad, good, no_alg]})
    assert set(keys) == {good["kid"], no_alg["kid"]}
    assert keys[no_alg["kid"]].algorithm_name == "EdDSA"
    assert len(skipped) == len(bad)
    assert all("AA" not in reason for reason in skipped)
    with pytest.raises(KeyMaterialError):  # strict mode still refuses the whole set
        PublicKeySet({"keys": [*bad, good]})


def test_skipping_drops_a_duplicated_kid_and_needs_one_usable_key() -> None:
    one, two = dict(SigningKey.generate().jwk), dict(SigningKey.generate().jwk)
    keys, _ = PublicKeySet.skipping({"keys": [one, {**two, "kid": one["kid"]}, two]})
    assert set(keys) == {two["kid"]}
    for jwks in ({"keys": []}, {"keys": [{**one, "d": "AA"}]}, {"nokeys": 1}, []):
        with pytest.raises(KeyMaterialError):
            PublicKeySet.skipping(jwks)  # type: ignore[arg-type]
