"""Issuing and verifying RFC 9068 access tokens, with hostile tokens built by hand.

Every hostile token below is built with `forge`: base64url of the exact header and payload
bytes, signed with cryptography through PyJWT's algorithm objects (or HMAC by hand), so no
library normalises away what the test means to send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bearer_grpc.core.errors import (
    AuthError,
    InsufficientScope,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenRevoked,
)
from bearer_grpc.core.keys import ALGORITHMS, PublicKeySet, SigningKey
from bearer_grpc.core.tokens import (
    DEFAULT_LEEWAY,
    MAX_TOKEN_BYTES,
    IssuedToken,
    Principal,
    TokenVerifier,
    issue_access_token,
)

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z, the frozen clock
ISSUER = "https://tokens.example"
AUDIENCE = "orders"
LIFETIME = 300
EXP = NOW + LIFETIME


class _Drop:
    """Marks a member to remove from the default header or claims."""

    def __repr__(self) -> str:
        return "DROP"  # a stable test id in every process (pytest-xdist compares them)


DROP = _Drop()


# --- building tokens by hand ----------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: Any) -> str:
    """base64url of ``value``: bytes as they are, anything else as compact JSON."""
    if isinstance(value, bytes):
        return b64url(value)
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def forge(
    header: Any,
    payload: Any,
    *,
    key: Any = None,
    alg: str = "ES256",
    signature: bytes | None = None,
) -> str:
    """A compact JWS of exactly these header and payload values."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    if signature is None:
        signature = jwt.get_algorithm_by_name(alg).sign(signing_input.encode(), key)
    return f"{signing_input}.{b64url(signature)}"


def with_changes(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in changes.items():
        if value is DROP:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "sub": "svc-checkout",
        "aud": AUDIENCE,
        "exp": EXP,
        "iat": NOW,
        "nbf": NOW,
        "jti": "jti-1",
        "client_id": "svc-checkout",
        "scope": "orders.read orders.list",
    }
    return with_changes(base, changes)


def header_for(key: SigningKey, **changes: Any) -> dict[str, Any]:
    return with_changes({"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}, changes)


def signed(key: SigningKey, payload: Any = None, **header_changes: Any) -> str:
    """A token signed by our trusted ``key`` (so only the changed part can be at fault)."""
    payload = claims() if payload is None else payload
    return forge(header_for(key, **header_changes), payload, key=key.private_key, alg=key.alg)


def hmac_token(header: Any, payload: Any, secret: bytes, alg: str = "HS256") -> str:
    """An HMAC-signed token, computed by hand (PyJWT refuses PEM-looking HMAC secrets)."""
    digest = hashlib.sha512 if alg.upper() == "HS512" else hashlib.sha256
    signing_input = f"{segment(header)}.{segment(payload)}"
    mac = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(mac)}"


def parts(token: str) -> list[str]:
    return token.split(".")


def raw_claims(**raw_values: str) -> bytes:
    """Claims JSON with members spliced in as raw JSON text (1e400, NaN, ...)."""
    placeholders = {name: f"__raw_{name}__" for name in raw_values}
    text = json.dumps(claims(**placeholders), separators=(",", ":"))
    for name, raw in raw_values.items():
        text = text.replace(f'"{placeholders[name]}"', raw)
    return text.encode()


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyset(signing_keys: dict[str, SigningKey]) -> PublicKeySet:
    return PublicKeySet({"keys": [dict(k.jwk) for k in signing_keys.values()]})


@pytest.fixture(scope="module")
def key(signing_keys: dict[str, SigningKey]) -> SigningKey:
    return signing_keys["ES256"]


def make_verifier(keyset: PublicKeySet, now: float = NOW, **options: Any) -> TokenVerifier:
    return TokenVerifier(keyset, issuer=ISSUER, clock=lambda: now, **options)


@pytest.fixture(scope="module")
def verifier(keyset: PublicKeySet) -> TokenVerifier:
    return make_verifier(keyset)


def verify(verifier: TokenVerifier, token: str, **kwargs: Any) -> Principal:
    return verifier.verify(token, audience=kwargs.pop("audience", AUDIENCE), **kwargs)


# --- issue and verify: the good path ---------------------------------------------------------


def issue(key: SigningKey, **changes: Any) -> IssuedToken:
    options: dict[str, Any] = {
        "issuer": ISSUER,
        "subject": "svc-checkout",
        "audience": AUDIENCE,
        "scopes": ["orders.read", "orders.list"],
        "client_id": "svc-checkout",
        "lifetime": LIFETIME,
        "now": NOW,
    }
    return issue_access_token(key, **{**options, **changes})


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_issued_token_verifies(
    signing_keys: dict[str, SigningKey], verifier: TokenVerifier, alg: str
) -> None:
    issued = issue(signing_keys[alg])
    principal = verify(verifier, issued.token)
    assert principal.token_id == issued.token_id


def test_principal_fields(key: SigningKey, verifier: TokenVerifier) -> None:
    issued = issue(key, token_id="tok-42")
    principal = verify(verifier, issued.token)
    assert principal.subject == "svc-checkout"
    assert principal.scopes == frozenset({"orders.read", "orders.list"})
    assert principal.token_id == "tok-42"
    assert principal.issuer == ISSUER
    assert principal.audience == (AUDIENCE,)
    assert principal.client_id == "svc-checkout"
    assert principal.issued_at == NOW
    assert principal.expires_at == EXP
    assert principal.claims["jti"] == "tok-42"
    assert principal.claims["scope"] == "orders.read orders.list"
    assert principal.has_scopes(["orders.read"])
    assert not principal.has_scopes(["orders.write"])


def test_principal_claims_are_read_only(key: SigningKey, verifier: TokenVerifier) -> None:
    principal = verify(verifier, issue(key).token)
    with pytest.raises(TypeError):
        principal.claims["sub"] = "admin"  # type: ignore[index]
    with pytest.raises(AttributeError):
        principal.subject = "admin"  # type: ignore[misc]


def test_principal_claims_are_a_copy(verifier: TokenVerifier) -> None:
    source = claims()
    principal = verifier.check_claims(source, audience=AUDIENCE)
    source["sub"] = "admin"
    assert principal.claims["sub"] == "svc-checkout"


def test_issued_token_header_and_claims(key: SigningKey) -> None:
    issued = issue(key, token_id="tok-1")
    assert jwt.get_unverified_header(issued.token) == {
        "alg": key.alg,
        "kid": key.kid,
        "typ": "at+jwt",
    }
    body = jwt.decode(issued.token, options={"verify_signature": False})
    assert body == {
        "iss": ISSUER,
        "sub": "svc-checkout",
        "aud": AUDIENCE,
        "exp": EXP,
        "iat": NOW,
        "nbf": NOW,
        "jti": "tok-1",
        "client_id": "svc-checkout",
        "scope": "orders.read orders.list",
    }
    assert issued.expires_at == EXP
    assert issued.token_id == "tok-1"


def test_issued_token_ids_are_random(key: SigningKey) -> None:
    assert issue(key).token_id != issue(key).token_id


def test_issued_token_repr_hides_the_token(key: SigningKey) -> None:
    issued = issue(key)
    assert parts(issued.token)[2][:16] not in repr(issued)
    assert parts(issued.token)[1][:16] not in repr(issued)


def test_hand_built_token_verifies(key: SigningKey, verifier: TokenVerifier) -> None:
    # The forge helper itself makes acceptable tokens: hostile variants differ only as named.
    assert verify(verifier, signed(key)).subject == "svc-checkout"


def test_optional_claims_may_be_absent(key: SigningKey, verifier: TokenVerifier) -> None:
    principal = verify(verifier, signed(key, claims(nbf=DROP, client_id=DROP, scope=DROP)))
    assert principal.client_id == ""
    assert principal.scopes == frozenset()


def test_verifier_repr_has_no_key_material(key: SigningKey, verifier: TokenVerifier) -> None:
    assert key.jwk["x"][:16] not in repr(verifier)


# --- time ---------------------------------------------------------------------------------


def test_expired_beyond_leeway_is_expired(key: SigningKey, keyset: PublicKeySet) -> None:
    with pytest.raises(TokenExpired):
        verify(make_verifier(keyset, now=EXP + DEFAULT_LEEWAY), signed(key))
    with pytest.raises(TokenExpired):
        verify(make_verifier(keyset, now=EXP + 86_400), signed(key))


def test_expired_within_leeway_is_accepted(key: SigningKey, keyset: PublicKeySet) -> None:
    assert verify(make_verifier(keyset, now=EXP), signed(key))
    assert verify(make_verifier(keyset, now=EXP + DEFAULT_LEEWAY - 1), signed(key))
    assert verify(make_verifier(keyset, now=EXP + DEFAULT_LEEWAY - 0.5), signed(key))


def test_zero_leeway_expires_at_exp(key: SigningKey, keyset: PublicKeySet) -> None:
    assert verify(make_verifier(keyset, now=EXP - 1, leeway=0), signed(key))
    with pytest.raises(TokenExpired):
        verify(make_verifier(keyset, now=EXP, leeway=0), signed(key))


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_future_beyond_leeway_is_invalid(
    key: SigningKey, verifier: TokenVerifier, claim: str
) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, claims(**{claim: NOW + DEFAULT_LEEWAY + 1})))
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, claims(**{claim: NOW + 86_400, "exp": NOW + 90_000})))


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_future_within_leeway_is_accepted(
    key: SigningKey, verifier: TokenVerifier, claim: str
) -> None:
    assert verify(verifier, signed(key, claims(**{claim: NOW + DEFAULT_LEEWAY})))


# --- audience and issuer ----------------------------------------------------------------


@pytest.mark.parametrize(
    "aud",
    ["billing", "Orders", "ORDERS", "order", "orders ", " orders", "orders.v2", "", "orders\x00"],
    ids=repr,
)
def test_wrong_audience_is_invalid(key: SigningKey, verifier: TokenVerifier, aud: str) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, claims(aud=aud)))


def test_audience_in_a_list_is_accepted(key: SigningKey, verifier: TokenVerifier) -> None:
    principal = verify(verifier, signed(key, claims(aud=["billing", AUDIENCE])))
    assert principal.audience == ("billing", AUDIENCE)


@pytest.mark.parametrize(
    "aud",
    [[], ["billing"], ["Orders"], [["orders"]], [AUDIENCE, 1], 1, None, {"orders": True}, True],
    ids=repr,
)
def test_audience_list_without_ours_or_mistyped_is_invalid(
    key: SigningKey, verifier: TokenVerifier, aud: Any
) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, claims(aud=aud)))


def test_verifier_for_another_audience_rejects(key: SigningKey, verifier: TokenVerifier) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, issue(key).token, audience="billing")


@pytest.mark.parametrize(
    "iss",
    [
        "https://tokens.example.evil",
        "https://tokens.exampl",
        "https://tokens.example/",
        "https://tokens",
        "HTTPS://TOKENS.EXAMPLE",
        "https://Tokens.example",
        " https://tokens.example",
        "https://tokens.example ",
        "http://tokens.example",
        "",
        ["https://tokens.example"],
        None,
        1,
    ],
    ids=repr,
)
def test_wrong_issuer_is_invalid(key: SigningKey, verifier: TokenVerifier, iss: Any) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, claims(iss=iss)))


# --- required and well-typed claims ---------------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub", "jti"])
def test_missing_required_claim_is_invalid(
    key: SigningKey, verifier: TokenVerifier, claim: str
) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, claims(**{claim: DROP})))


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize(
    "value",
    [str(EXP), float(EXP), True, False, None, [EXP], {"t": EXP}],
    ids=["string", "float", "true", "false", "null", "list", "object"],
)
def test_numeric_date_of_wrong_type_is_invalid(
    key: SigningKey, verifier: TokenVerifier, claim: str, value: Any
) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, claims(**{claim: value})))


@pytest.mark.parametrize("raw", ["1e400", "-1e400", "NaN", "Infinity", "1767225900.0"])
def test_exp_non_finite_or_float_json_is_invalid(
    key: SigningKey, verifier: TokenVerifier, raw: str
) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, raw_claims(exp=raw)))


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_constant_in_any_claim_is_invalid(
    key: SigningKey, verifier: TokenVerifier, raw: str
) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, raw_claims(note=raw)))


def test_exp_with_thousands_of_digits_is_invalid(key: SigningKey, verifier: TokenVerifier) -> None:
    # Python refuses int() of > 4300 digits with ValueError; that must read as invalid.
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, raw_claims(exp="9" * 5000)))


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", [2**63, 2**64, 10**30, 253_402_300_800, -1])
def test_numeric_date_out_of_range_is_invalid(
    key: SigningKey, verifier: TokenVerifier, claim: str, value: int
) -> None:
    # Beyond year 9999 (or before 1970) no store column or datetime has to hold it.
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, claims(**{claim: value})))


def test_numeric_date_at_the_end_of_year_9999_is_accepted(
    key: SigningKey, verifier: TokenVerifier
) -> None:
    assert verify(verifier, signed(key, claims(exp=253_402_300_799))).expires_at == 253_402_300_799


def _with_duplicate(document: dict[str, Any], name: str, first: Any, last: Any) -> bytes:
    text = json.dumps({k: v for k, v in document.items() if k != name})
    key = json.dumps(name)
    return f"{text[:-1]}, {key}: {json.dumps(first)}, {key}: {json.dumps(last)}}}".encode()


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        ("alg", "none", "ES256"),
        ("alg", "ES256", "ES256"),
        ("kid", "other", None),
        ("typ", "JWT", "at+jwt"),
    ],
)
def test_duplicate_header_member_is_refused(
    key: SigningKey, verifier: TokenVerifier, name: str, first: Any, last: Any
) -> None:
    last = key.kid if last is None else last
    header = _with_duplicate(header_for(key), name, first, last)
    with pytest.raises((TokenMalformed, TokenInvalid)):
        verify(verifier, forge(header, claims(), key=key.private_key, alg=key.alg))


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        ("sub", "root", "svc-checkout"),
        ("sub", "svc-checkout", "root"),
        ("exp", EXP, EXP),
        ("scope", "orders.admin", "orders.read"),
    ],
)
def test_duplicate_claim_is_refused(
    key: SigningKey, verifier: TokenVerifier, name: str, first: Any, last: Any
) -> None:
    # Refused rather than "last wins": a proxy reading "first wins" could not disagree.
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, _with_duplicate(claims(), name, first, last)))


def test_duplicate_member_in_a_nested_object_is_refused(
    key: SigningKey, verifier: TokenVerifier
) -> None:
    payload = json.dumps(claims(ext="X")).replace('"X"', '{"a": 1, "a": 2}').encode()
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, payload))


@pytest.mark.parametrize("claim", ["sub", "jti"])
@pytest.mark.parametrize("value", ["", 1, None, ["a"], True], ids=repr)
def test_sub_and_jti_must_be_non_empty_strings(
    key: SigningKey, verifier: TokenVerifier, claim: str, value: Any
) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, claims(**{claim: value})))


@pytest.mark.parametrize("value", [["orders.read"], 1, True, {"orders.read": True}], ids=repr)
def test_non_string_scope_is_invalid(key: SigningKey, verifier: TokenVerifier, value: Any) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, claims(scope=value)))


@pytest.mark.parametrize("value", [1, ["svc"], True], ids=repr)
def test_non_string_client_id_is_invalid(
    key: SigningKey, verifier: TokenVerifier, value: Any
) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, claims(client_id=value)))


# --- typ ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typ",
    [DROP, "JWT", "jwt", "JOSE", "at+jwt2", "application/jwt", "", None, 1, ["at+jwt"]],
    ids=repr,
)
def test_typ_other_than_at_jwt_is_invalid(
    key: SigningKey, verifier: TokenVerifier, typ: Any
) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, typ=typ))


def test_typ_application_at_jwt_is_accepted(key: SigningKey, verifier: TokenVerifier) -> None:
    assert verify(verifier, signed(key, typ="application/at+jwt"))


# --- algorithm and key selection -------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_invalid(key: SigningKey, verifier: TokenVerifier, spelling: str) -> None:
    header = header_for(key, alg=spelling)
    # Keep a signature segment so the token has compact shape and reaches the alg check.
    with pytest.raises(TokenInvalid):
        verify(verifier, forge(header, claims(), signature=b"\0" * 64))
    with pytest.raises(TokenInvalid):
        verify(verifier, forge(header, claims(), key=key.private_key, alg=key.alg))


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE"])
def test_alg_none_with_signature_stripped_is_malformed(
    key: SigningKey, verifier: TokenVerifier, spelling: str
) -> None:
    token = forge(header_for(key, alg=spelling), claims(), signature=b"")
    assert token.endswith(".")
    with pytest.raises(TokenMalformed):
        verify(verifier, token)


@pytest.mark.parametrize(
    "alg",
    [DROP, None, "", ["ES256"], "es256", "ES384", "ES256K", "RS256", "EdDSA", "PS256"],
    ids=repr,
)
def test_alg_not_the_keys_alg_is_invalid(
    key: SigningKey, verifier: TokenVerifier, alg: Any
) -> None:
    # Signed correctly by our ES256 key: only the header's alg is wrong.
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, alg=alg))


def _public_encodings(key: SigningKey, keyset: PublicKeySet) -> dict[str, bytes]:
    public = key.private_key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encodings = {
        "spki-pem": pem,
        "spki-pem-no-newline": pem.rstrip(b"\n"),
        "spki-der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "openssh": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
        "jwk-json": json.dumps(dict(key.jwk)).encode(),
        "jwks-json": keyset.to_json().encode(),
    }
    if key.alg == "RS256":
        encodings["pkcs1-pem"] = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        )
    return encodings


_CONFUSION_CASES = [
    (alg, encoding)
    for alg in ALGORITHMS
    for encoding in ("spki-pem", "spki-pem-no-newline", "spki-der", "openssh", "jwk-json")
] + [("RS256", "pkcs1-pem"), ("ES256", "jwks-json")]


@pytest.mark.parametrize(("alg", "encoding"), _CONFUSION_CASES)
@pytest.mark.parametrize("hmac_alg", ["HS256", "HS512", "hs256"])
def test_key_confusion_hmac_signed_with_the_public_key(
    signing_keys: dict[str, SigningKey],
    keyset: PublicKeySet,
    verifier: TokenVerifier,
    alg: str,
    encoding: str,
    hmac_alg: str,
) -> None:
    # McLean 2015 / CVE-2017-11424 / CVE-2022-29217: the public key fed to HMAC as a secret.
    key = signing_keys[alg]
    secret = _public_encodings(key, keyset)[encoding]
    token = hmac_token(header_for(key, alg=hmac_alg), claims(scope="admin"), secret, hmac_alg)
    with pytest.raises(TokenInvalid):
        verify(verifier, token)


def test_unknown_kid_is_invalid(key: SigningKey, verifier: TokenVerifier) -> None:
    for kid in ["unknown", key.kid.lower(), key.kid.upper(), key.kid + " ", key.kid[:-1], ""]:
        if kid == key.kid:
            continue
        with pytest.raises(TokenInvalid):
            verify(verifier, signed(key, kid=kid))


@pytest.mark.parametrize(
    "kid",
    [DROP, None, 1, True, ["kid"], {"kid": "x"}],
    ids=["missing", "null", "int", "bool", "list", "object"],
)
def test_kid_not_a_string_is_invalid(key: SigningKey, verifier: TokenVerifier, kid: Any) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, kid=kid))


def test_kid_as_list_holding_our_kid_is_invalid(key: SigningKey, verifier: TokenVerifier) -> None:
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, kid=[key.kid]))


def test_kid_of_another_trusted_key_is_invalid(
    signing_keys: dict[str, SigningKey], verifier: TokenVerifier
) -> None:
    es256, ed = signing_keys["ES256"], signing_keys["EdDSA"]
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(es256, kid=ed.kid))  # alg ES256 but the kid is EdDSA's
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(es256, kid=ed.kid, alg="EdDSA"))


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"], "exp": EXP},
        {"crit": ["b64"], "b64": True},
        {"b64": False},
        {"jwk": "OURS"},
        {"jku": "https://attacker.example/jwks.json"},
        {"x5u": "https://attacker.example/cert.pem"},
        {"x5c": ["MIIBszCCAVmgAwIBAgIU"]},
        {"x5t": "dGh1bWI"},
        {"zip": "DEF"},
    ],
    ids=["crit", "crit-b64", "b64", "jwk", "jku", "x5u", "x5c", "x5t", "zip"],
)
def test_header_with_key_material_or_extensions_is_invalid(
    key: SigningKey, verifier: TokenVerifier, extra: dict[str, Any]
) -> None:
    if extra.get("jwk") == "OURS":
        extra = {"jwk": dict(key.jwk)}
    # Signed by our own trusted key: the header parameter alone must be refused.
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, **extra))


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_attacker_key_with_our_kid_is_invalid(
    signing_keys: dict[str, SigningKey], verifier: TokenVerifier, alg: str
) -> None:
    ours = signing_keys[alg]
    attacker_private = SigningKey.generate(alg).private_key
    token = forge(header_for(ours), claims(scope="admin"), key=attacker_private, alg=alg)
    assert jwt.get_unverified_header(token)["kid"] == ours.kid
    with pytest.raises(TokenInvalid):
        verify(verifier, token)


def test_attacker_embedded_jwk_is_invalid(verifier: TokenVerifier) -> None:
    attacker = SigningKey.generate("ES256")
    header = header_for(attacker, jwk=dict(attacker.jwk))
    with pytest.raises(TokenInvalid):
        verify(verifier, forge(header, claims(), key=attacker.private_key))


# --- signature and payload integrity ------------------------------------------------------------


def test_tampered_payload_is_invalid(key: SigningKey, verifier: TokenVerifier) -> None:
    h, _, s = parts(signed(key))
    escalated = segment(claims(scope="orders.read orders.write admin"))
    with pytest.raises(TokenInvalid):
        verify(verifier, f"{h}.{escalated}.{s}")


def test_reserialized_header_is_invalid(key: SigningKey, verifier: TokenVerifier) -> None:
    _, p, s = parts(signed(key))
    spaced = b64url(json.dumps(header_for(key), separators=(", ", ": ")).encode())
    with pytest.raises(TokenInvalid):
        verify(verifier, f"{spaced}.{p}.{s}")


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_tampered_signature_is_invalid(
    signing_keys: dict[str, SigningKey], verifier: TokenVerifier, alg: str
) -> None:
    h, p, s = parts(signed(signing_keys[alg]))
    raw = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    raw[len(raw) // 2] ^= 0x01
    with pytest.raises(TokenInvalid):
        verify(verifier, f"{h}.{p}.{b64url(bytes(raw))}")


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("cut", [1, 4, 10])
def test_truncated_signature_is_invalid(
    signing_keys: dict[str, SigningKey], verifier: TokenVerifier, alg: str, cut: int
) -> None:
    token = signed(signing_keys[alg])
    with pytest.raises(TokenInvalid):
        verify(verifier, token[:-cut])


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_extended_signature_is_invalid(
    signing_keys: dict[str, SigningKey], verifier: TokenVerifier, alg: str
) -> None:
    h, p, s = parts(signed(signing_keys[alg]))
    raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    for changed in (raw + b"\0", b"\0" + raw, raw + raw):
        with pytest.raises(TokenInvalid):
            verify(verifier, f"{h}.{p}.{b64url(changed)}")


def test_ecdsa_psychic_zero_signature_is_invalid(key: SigningKey, verifier: TokenVerifier) -> None:
    # CVE-2022-21449: r = s = 0, raw and DER encoded.
    for signature in (b"\0" * 64, encode_dss_signature(0, 0)):
        with pytest.raises(TokenInvalid):
            verify(verifier, forge(header_for(key), claims(), signature=signature))


def test_ecdsa_der_signature_is_invalid(key: SigningKey, verifier: TokenVerifier) -> None:
    h, p, s = parts(signed(key))
    raw = base64.urlsafe_b64decode(s + "==")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    with pytest.raises(TokenInvalid):
        verify(verifier, f"{h}.{p}.{b64url(der)}")


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _non_canonical(text: str) -> str:
    """The same bytes as ``text`` (not a multiple of 4 long), with an unused bit set."""
    unused = {2: 0b1111, 3: 0b11}[len(text) % 4]
    return text[:-1] + _ALPHABET[_ALPHABET.index(text[-1]) | unused]


@pytest.mark.parametrize("where", ["header", "payload", "signature"])
def test_non_canonical_segment_is_invalid_even_validly_signed(
    key: SigningKey, verifier: TokenVerifier, where: str
) -> None:
    # One token, one text: a segment whose last character carries bits beyond its bytes
    # decodes like the canonical one, so it would be a second string for the same token.
    pad = ""
    while True:
        head, body = segment(header_for(key, x=pad)), segment(claims(x=pad))
        if len(head) % 4 and len(body) % 4:
            break
        pad += "x"
    if where == "header":
        head = _non_canonical(head)
    elif where == "payload":
        body = _non_canonical(body)
    algorithm = jwt.get_algorithm_by_name(key.alg)
    sig = b64url(algorithm.sign(f"{head}.{body}".encode(), key.private_key))
    if where == "signature":
        sig = _non_canonical(sig)
    with pytest.raises(TokenInvalid):
        verify(verifier, f"{head}.{body}.{sig}")


def test_signature_is_checked_before_claims(key: SigningKey, keyset: PublicKeySet) -> None:
    # An expired token with a bad signature must not reveal that it is expired (RFC 8725 §3.10).
    late = make_verifier(keyset, now=EXP + 86_400)
    attacker = SigningKey.generate("ES256")
    forged = forge(header_for(key), claims(), key=attacker.private_key)
    with pytest.raises(TokenInvalid):
        verify(late, forged)
    with pytest.raises(TokenExpired):  # the same claims, signed by us, are merely expired
        verify(late, signed(key))


# --- shape: TokenMalformed ------------------------------------------------------------


@pytest.fixture(scope="module")
def good(key: SigningKey) -> str:
    return signed(key)


def _malformed_shapes(token: str) -> dict[str, str]:
    h, p, s = parts(token)
    return {
        "empty": "",
        "one-segment": h,
        "two-segments": f"{h}.{p}",
        "four-segments": f"{h}.{p}.{s}.{s}",
        "five-segments": f"{h}.{p}.{s}.{s}.{s}",
        "trailing-dot": f"{token}.",
        "leading-dot": f".{token}",
        "empty-header": f".{p}.{s}",
        "empty-payload": f"{h}..{s}",
        "empty-signature": f"{h}.{p}.",
        "dots-only": "..",
        "padding-header": f"{h}=.{p}.{s}",
        "padding-payload": f"{h}.{p}==.{s}",
        "padding-signature": f"{h}.{p}.{s}=",
        "plus": f"{h}.{p}.{s[:-1]}+",
        "slash": f"{h}.{p}.{s[:-1]}/",
        "space-inside": f"{h}.{p[:5]} {p[5:]}.{s}",
        "leading-space": f" {token}",
        "trailing-newline": f"{token}\n",
        "nul": f"{h}.{p}.{s}\x00",
        "non-ascii": f"{h}.{p}.{s[:-1]}\u00e9",
        "fullwidth-letter": f"{h}.{p}.{s[:-1]}\uff41",
        "percent": f"{h}.{p}.{s[:-1]}%",
        "bearer-prefix": f"Bearer {token}",
        "json-serialization": json.dumps({"protected": h, "payload": p, "signature": s}),
    }


@pytest.mark.parametrize("shape", list(_malformed_shapes("h.p.s")))
def test_not_a_compact_jws_is_malformed(good: str, verifier: TokenVerifier, shape: str) -> None:
    with pytest.raises(TokenMalformed):
        verify(verifier, _malformed_shapes(good)[shape])


@pytest.mark.parametrize("value", [None, b"a.b.c", 1], ids=repr)
def test_non_string_token_is_malformed(verifier: TokenVerifier, value: Any) -> None:
    with pytest.raises(TokenMalformed):
        verifier.verify(value, audience=AUDIENCE)


def test_oversized_token_is_malformed(key: SigningKey, keyset: PublicKeySet) -> None:
    token = signed(key, claims(filler="x" * MAX_TOKEN_BYTES))
    assert len(token) > MAX_TOKEN_BYTES
    # Valid in every other respect: a verifier with a larger bound accepts it.
    assert verify(make_verifier(keyset, max_bytes=len(token)), token)
    with pytest.raises(TokenMalformed):
        verify(make_verifier(keyset), token)


def test_max_bytes_bound_is_inclusive(good: str, keyset: PublicKeySet) -> None:
    assert verify(make_verifier(keyset, max_bytes=len(good)), good)
    with pytest.raises(TokenMalformed):
        verify(make_verifier(keyset, max_bytes=len(good) - 1), good)


@pytest.mark.parametrize(
    "header",
    [b"[]", b'"at+jwt"', b"1", b"null", b"true", b"{", b"", b"\xff\xfe{}", b'{"alg":"ES256"'],
    ids=repr,
)
def test_header_not_a_json_object_is_malformed(
    key: SigningKey, verifier: TokenVerifier, header: bytes
) -> None:
    segment_ = b64url(header) or "AA"
    token = f"{segment_}.{segment(claims())}.{b64url(b'x' * 64)}"
    with pytest.raises(TokenMalformed):
        verify(verifier, token)


def test_header_segment_of_impossible_length_is_malformed(
    good: str, verifier: TokenVerifier
) -> None:
    _, p, s = parts(good)
    with pytest.raises(TokenMalformed):
        verify(verifier, f"A.{p}.{s}")  # one base64 character cannot encode a byte


@pytest.mark.parametrize(
    "payload",
    [[], ["sub"], "svc", 1, b"null", True, b"{", b"\xff\xfe", b"[" * 100_000],
    ids=["list", "list-str", "string", "int", "null", "bool", "bad-json", "bad-utf8", "deep"],
)
def test_payload_not_a_json_object_is_invalid(
    key: SigningKey, keyset: PublicKeySet, payload: Any
) -> None:
    verifier = make_verifier(keyset, max_bytes=10**6)
    with pytest.raises(TokenInvalid):
        verify(verifier, signed(key, payload))


# --- revocation and scopes ------------------------------------------------------------------


def test_revoked_token_is_revoked(key: SigningKey, keyset: PublicKeySet) -> None:
    issued = issue(key)
    asked: list[str] = []

    def is_revoked(jti: str) -> bool:
        asked.append(jti)
        return jti == issued.token_id

    verifier = make_verifier(keyset, is_revoked=is_revoked)
    with pytest.raises(TokenRevoked):
        verify(verifier, issued.token)
    assert asked == [issued.token_id]  # keyed by jti, never by the token string
    assert verify(verifier, issue(key).token)


def test_revocation_is_checked_before_scopes(key: SigningKey, keyset: PublicKeySet) -> None:
    verifier = make_verifier(keyset, is_revoked=lambda jti: True)
    with pytest.raises(TokenRevoked):
        verify(verifier, issue(key).token, required_scopes=["admin"])


def test_missing_required_scope_is_insufficient(key: SigningKey, verifier: TokenVerifier) -> None:
    token = issue(key, scopes=["orders.read"]).token
    with pytest.raises(InsufficientScope) as info:
        verify(verifier, token, required_scopes=["orders.read", "orders.write"])
    assert info.value.required_scopes == ("orders.read", "orders.write")


def test_present_required_scopes_are_accepted(key: SigningKey, verifier: TokenVerifier) -> None:
    token = issue(key, scopes=["orders.read", "orders.write"]).token
    assert verify(verifier, token, required_scopes=["orders.write"])
    assert verify(verifier, token, required_scopes=[])


def test_scope_match_is_exact(key: SigningKey, verifier: TokenVerifier) -> None:
    token = issue(key, scopes=["orders.read"]).token
    for required in (["orders"], ["Orders.read"], ["orders.read "], ["orders.rea"]):
        with pytest.raises(InsufficientScope):
            verify(verifier, token, required_scopes=required)


def test_authenticate_does_not_check_scopes(key: SigningKey, verifier: TokenVerifier) -> None:
    principal = verifier.authenticate(issue(key, scopes=[]).token, audience=AUDIENCE)
    with pytest.raises(InsufficientScope):
        TokenVerifier.authorize(principal, ["orders.read"])
    assert TokenVerifier.authorize(principal, []) is principal


# --- check_claims(audience=None) ---------------------------------------------------------------


def test_check_claims_without_audience_skips_only_the_audience_comparison(
    verifier: TokenVerifier, keyset: PublicKeySet
) -> None:
    principal = verifier.check_claims(claims(aud=["billing", "shipping"]), audience=None)
    assert principal.audience == ("billing", "shipping")
    with pytest.raises(TokenInvalid):
        verifier.check_claims(claims(aud=["billing"]), audience=AUDIENCE)
    with pytest.raises(TokenInvalid):
        verifier.check_claims(claims(aud=1), audience=None)
    with pytest.raises(TokenInvalid):
        verifier.check_claims(claims(aud=[]), audience=None)
    with pytest.raises(TokenInvalid):
        verifier.check_claims(claims(aud=DROP), audience=None)
    with pytest.raises(TokenInvalid):
        verifier.check_claims(claims(iss="https://other.example"), audience=None)
    with pytest.raises(TokenInvalid):
        verifier.check_claims(claims(exp="soon"), audience=None)
    with pytest.raises(TokenExpired):
        make_verifier(keyset, now=EXP + 86_400).check_claims(claims(), audience=None)


# --- errors never echo the token ----------------------------------------------------------------


def test_errors_are_terse_and_never_echo_the_token(
    key: SigningKey, keyset: PublicKeySet, good: str
) -> None:
    cases = [
        (make_verifier(keyset), good + "."),
        (make_verifier(keyset), signed(key, claims(aud="billing"))),
        (make_verifier(keyset, now=EXP + 86_400), good),
        (make_verifier(keyset, is_revoked=lambda jti: True), good),
    ]
    for verifier, token in cases:
        with pytest.raises(AuthError) as info:
            verify(verifier, token)
        err = info.value
        assert str(err) == type(err).default_message
        for piece in parts(token):
            if piece:
                assert piece[:12] not in repr(err) + str(err)


# --- properties ---------------------------------------------------------------------------------

_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@settings(
    database=None,
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    data=st.data(),
    text=st.one_of(
        st.text(),
        st.text(alphabet=_B64URL + ".=+/ ", max_size=200),
        st.lists(st.text(alphabet=_B64URL, max_size=60), min_size=1, max_size=5).map(".".join),
    ),
)
def test_property_verify_raises_only_auth_errors_for_any_text(
    good: str, verifier: TokenVerifier, data: st.DataObject, text: str
) -> None:
    mutate = data.draw(st.booleans(), label="mutate the good token")
    if mutate:
        index = data.draw(st.integers(0, len(good) - 1), label="index")
        text = good[:index] + text[:3] + good[index + 1 :]
    try:
        principal = verify(verifier, text)
    except AuthError:
        return
    assert principal.issuer == ISSUER


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_claim_values = st.one_of(
    _json,
    st.sampled_from([ISSUER, AUDIENCE, [AUDIENCE], NOW, EXP, NOW + 10_000, "orders.read", ""]),
)


@pytest.mark.slow
@settings(
    database=None,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    header_changes=st.dictionaries(
        st.sampled_from(["alg", "kid", "typ", "crit", "jwk", "cty", "x"]), _json, max_size=2
    ),
    claim_changes=st.dictionaries(
        st.sampled_from(["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope"]),
        st.one_of(_claim_values, st.just(DROP)),
        max_size=4,
    ),
)
def test_property_validly_signed_odd_tokens_yield_a_sound_principal_or_an_auth_error(
    key: SigningKey,
    verifier: TokenVerifier,
    header_changes: dict[str, Any],
    claim_changes: dict[str, Any],
) -> None:
    token = signed(key, claims(**claim_changes), **header_changes)
    try:
        principal = verify(verifier, token)
    except AuthError:
        return
    assert principal.issuer == ISSUER
    assert AUDIENCE in principal.audience
    assert isinstance(principal.subject, str) and principal.subject
    assert isinstance(principal.token_id, str) and principal.token_id
    assert type(principal.expires_at) is int and principal.expires_at + DEFAULT_LEEWAY > NOW
    assert type(principal.issued_at) is int and principal.issued_at <= NOW + DEFAULT_LEEWAY
    assert all(isinstance(s, str) for s in principal.scopes)
