"""The hostile-token catalogue: every case is a named builder of one token.

Names follow ``family.case`` (the family is the kind of attack). A case runs against
each algorithm in its ``algs``; builders get a :class:`Kit` holding that deployment's
own signing key, so insider cases carry genuine signatures over hostile content and
only the hostile part can be why a token is refused.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from bearer_grpc.core.keys import ALGORITHMS
from tests.security._encodings import ENCODINGS
from tests.security._forge import DROP, Kit, b64url, hmac_sign, segment, unb64url

Builder = Callable[[Kit], str]
ALL = tuple(ALGORITHMS)
ES, ED, RS = ("ES256",), ("EdDSA",), ("RS256",)
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED25519_L = 2**252 + 27742317777372353535851937790883648493


@dataclass(frozen=True)
class Case:
    """One hostile token: its name, how to build it, which deployments it targets."""

    name: str
    build: Builder
    algs: tuple[str, ...] = ES


CASES: list[Case] = []


def add(name: str, build: Builder, algs: tuple[str, ...] = ES) -> None:
    """Register a builder made in a loop."""
    CASES.append(Case(name, build, algs))


def _parts(token: str) -> list[str]:
    return token.split(".")


def _raw_claims(kit: Kit, **raw_values: str) -> bytes:
    """Claims JSON with members spliced in as raw JSON text (NaN, 1e400, ...)."""
    marks = {name: f"__raw_{name}__" for name in raw_values}
    text = json.dumps(kit.claims(**marks), separators=(",", ":"))
    for name, raw in raw_values.items():
        text = text.replace(f'"{marks[name]}"', raw)
    return text.encode()


# --- alg: none and friends (A1, A2) ---------------------------------------------------------

for _spelling in ("none", "None", "NONE", "nOnE"):

    def _none_unsigned(kit: Kit, s: str = _spelling) -> str:
        return f"{segment(kit.header(alg=s))}.{segment(kit.claims())}."

    def _none_original_sig(kit: Kit, s: str = _spelling) -> str:
        return kit.resign_header(kit.header(alg=s))

    def _none_no_kid(kit: Kit, s: str = _spelling) -> str:
        return f"{segment({'alg': s, 'typ': 'JWT'})}.{segment(kit.claims())}."

    def _none_signed_by_us(kit: Kit, s: str = _spelling) -> str:
        return kit.signed(alg=s)

    add(f"alg_none.{_spelling}_without_signature", _none_unsigned)
    add(f"alg_none.{_spelling}_with_original_signature", _none_original_sig)
    add(f"alg_none.{_spelling}_no_kid_without_signature", _none_no_kid)
    add(f"alg_none.{_spelling}_validly_signed_header", _none_signed_by_us)

for _name, _value in {
    "missing": DROP,
    "null": None,
    "empty": "",
    "list_of_ours": ["ES256"],
    "number": 256,
    "lowercase": "es256",
}.items():
    add(f"alg.{_name}_validly_signed", lambda kit, v=_value: kit.signed(alg=v))

for _other in ("ES384", "ES512", "ES256K", "PS256", "RS512", "HS256"):
    add(f"alg.switched_to_{_other}_validly_signed", lambda kit, a=_other: kit.signed(alg=a))
add("alg.switched_to_EdDSA_validly_signed", lambda kit: kit.signed(alg="EdDSA"), ES + RS)
add("alg.switched_to_ES256_validly_signed", lambda kit: kit.signed(alg="ES256"), ED + RS)
add("alg.switched_to_RS256_validly_signed", lambda kit: kit.signed(alg="RS256"), ES + ED)


# --- key confusion: HMAC keyed with our public key (A3) ----------------------------------

for _hs in ("HS256", "HS384", "HS512"):
    for _enc, _encode in ENCODINGS.items():

        def _confused(kit: Kit, hs: str = _hs, encode: Callable = _encode) -> str:  # type: ignore[type-arg]
            signing_input = f"{segment(kit.header(alg=hs))}.{segment(kit.claims())}"
            return f"{signing_input}.{b64url(hmac_sign(encode(kit.key), hs, signing_input))}"

        # Every encoding of every key type under HS256; HS384/HS512 on the ES256 key.
        add(f"key_confusion.{_hs.lower()}_{_enc}", _confused, ALL if _hs == "HS256" else ES)


def _hs256_blank(kit: Kit) -> str:
    signing_input = f"{segment(kit.header(alg='HS256'))}.{segment(kit.claims())}"
    return f"{signing_input}.{b64url(hmac_sign(b'', 'HS256', signing_input))}"


add("key_confusion.hs256_empty_secret", _hs256_blank)
add(
    "key_confusion.hs256_guessable_secret",
    lambda kit: (lambda si: f"{si}.{b64url(hmac_sign(b'secret', 'HS256', si))}")(
        f"{segment(kit.header(alg='HS256'))}.{segment(kit.claims())}"
    ),
)


# --- signature value (S2) ----------------------------------------------------------------


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


_SIGNATURE_CASES: dict[str, Builder] = {
    "stripped": lambda kit: kit.legit().rsplit(".", 1)[0] + ".",
    "stripped_with_its_dot": lambda kit: kit.legit().rsplit(".", 1)[0],
    "truncated_one_byte": lambda kit: kit.with_signature(
        kit.legit(), unb64url(_parts(kit.legit())[2])[:-1]
    ),
    "truncated_to_half": lambda kit: kit.with_signature(
        kit.legit(), unb64url(_parts(kit.legit())[2])[:16]
    ),
    "truncated_one_char": lambda kit: kit.legit()[:-1],
    "extended_zero_byte": lambda kit: kit.with_signature(
        kit.legit(), unb64url(_parts(kit.legit())[2]) + b"\0"
    ),
    "extended_one_char": lambda kit: kit.legit() + "A",
    "prefixed_zero_byte": lambda kit: kit.with_signature(
        kit.legit(), b"\0" + unb64url(_parts(kit.legit())[2])
    ),
    "bit_flipped_first_byte": lambda kit: kit.with_signature(
        kit.legit(), _flip(unb64url(_parts(kit.legit())[2]), 0)
    ),
    "bit_flipped_last_byte": lambda kit: kit.with_signature(
        kit.legit(), _flip(unb64url(_parts(kit.legit())[2]), -1)
    ),
    "all_zero_bytes": lambda kit: kit.with_signature(
        kit.legit(), bytes(len(kit.original_signature()))
    ),
    "doubled": lambda kit: kit.with_signature(kit.legit(), unb64url(_parts(kit.legit())[2]) * 2),
    "of_another_token": lambda kit: kit.with_signature(
        kit.legit(), kit.legit(sub="other").split(".")[2]
    ),
}
for _name, _build in _SIGNATURE_CASES.items():
    add(f"signature.{_name}", _build, ALL)


# --- ECDSA (S3): CVE-2022-21449 and friends ---------------------------------------------


def _raw_rs(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _legit_rs(kit: Kit) -> tuple[str, int, int]:
    token = kit.legit()
    raw = unb64url(_parts(token)[2])
    return token, int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


def _ecdsa(r_of: Callable[[int], int], s_of: Callable[[int], int]) -> Builder:
    def build(kit: Kit) -> str:
        token, r, s = _legit_rs(kit)
        return kit.with_signature(token, _raw_rs(r_of(r) % 2**256, s_of(s) % 2**256))

    return build


add("ecdsa.psychic_r0_s0_raw", lambda kit: kit.with_signature(kit.legit(), bytes(64)), ES)
add("ecdsa.psychic_r0_s0_der", lambda kit: kit.with_signature(kit.legit(), "MAYCAQACAQA"), ES)
add("ecdsa.r_n_s_n", _ecdsa(lambda r: P256_N, lambda s: P256_N), ES)
add("ecdsa.r1_s1", _ecdsa(lambda r: 1, lambda s: 1), ES)
add("ecdsa.r_zero_s_legit", _ecdsa(lambda r: 0, lambda s: s), ES)
add("ecdsa.r_legit_s_zero", _ecdsa(lambda r: r, lambda s: 0), ES)
add("ecdsa.r_plus_n", _ecdsa(lambda r: r + P256_N, lambda s: s), ES)
add("ecdsa.s_n_minus_1", _ecdsa(lambda r: r, lambda s: P256_N - 1), ES)


def _der_encoded(kit: Kit) -> str:
    token, r, s = _legit_rs(kit)
    return kit.with_signature(token, encode_dss_signature(r, s))


def _r_s_swapped(kit: Kit) -> str:
    token, r, s = _legit_rs(kit)
    return kit.with_signature(token, _raw_rs(s, r))


add("ecdsa.der_encoded_legit_signature", _der_encoded, ES)
add("ecdsa.r_s_swapped", _r_s_swapped, ES)


# --- EdDSA (S4) ------------------------------------------------------------------------


def _ed_s_plus_l(kit: Kit) -> str:
    token = kit.legit()
    raw = unb64url(_parts(token)[2])
    s = int.from_bytes(raw[32:], "little") + ED25519_L
    return kit.with_signature(token, raw[:32] + s.to_bytes(32, "little"))


add("eddsa.s_plus_L_noncanonical", _ed_s_plus_l, ED)
add(
    "eddsa.s_is_L",
    lambda kit: kit.with_signature(
        kit.legit(), unb64url(_parts(kit.legit())[2])[:32] + ED25519_L.to_bytes(32, "little")
    ),
    ED,
)
add(
    "eddsa.length_63",
    lambda kit: kit.with_signature(kit.legit(), unb64url(_parts(kit.legit())[2])[:63]),
    ED,
)
add(
    "eddsa.length_65",
    lambda kit: kit.with_signature(kit.legit(), unb64url(_parts(kit.legit())[2]) + b"\0"),
    ED,
)
add(
    "eddsa.identity_r_zero_s",
    lambda kit: kit.with_signature(kit.legit(), (1).to_bytes(32, "little") + bytes(32)),
    ED,
)


# --- RSA (S5) ------------------------------------------------------------------------------


def _rsa_sig(value_of: Callable[[int], int]) -> Builder:
    def build(kit: Kit) -> str:
        n = kit.key.private_key.public_key().public_numbers().n  # type: ignore[union-attr]
        size = (n.bit_length() + 7) // 8
        return kit.with_signature(kit.legit(), value_of(n).to_bytes(size, "big"))

    return build


add("rsa.signature_is_0", _rsa_sig(lambda n: 0), RS)
add("rsa.signature_is_1", _rsa_sig(lambda n: 1), RS)
add("rsa.signature_is_n_minus_1", _rsa_sig(lambda n: n - 1), RS)
add("rsa.signature_is_n", _rsa_sig(lambda n: n), RS)


def _pss_by_our_key(kit: Kit) -> str:
    signing_input = f"{segment(kit.header(alg='PS256'))}.{segment(kit.claims())}"
    return f"{signing_input}.{b64url(_pss(kit, signing_input))}"


def _pss(kit: Kit, signing_input: str) -> bytes:
    import jwt

    return bytes(
        jwt.get_algorithm_by_name("PS256").sign(signing_input.encode(), kit.key.private_key)
    )


add("rsa.pss_signature_by_our_key_header_ps256", _pss_by_our_key, RS)
add(
    "rsa.pss_signature_by_our_key_header_rs256",
    lambda kit: (lambda si: f"{si}.{b64url(_pss(kit, si))}")(
        f"{segment(kit.header())}.{segment(kit.claims())}"
    ),
    RS,
)


# --- tampering under the original signature (S1, T8) ---------------------------------------

add(
    "tamper.payload_scope_escalated",
    lambda kit: kit.resign_header(kit.header(), kit.claims(scope="echo.use echo.admin")),
)
add(
    "tamper.payload_subject_changed",
    lambda kit: kit.resign_header(kit.header(), kit.claims(sub="root")),
)
add(
    "tamper.payload_exp_extended",
    lambda kit: kit.resign_header(kit.header(), kit.claims(exp=kit.now + 10**6)),
)


def _reserialized(index: int) -> Builder:
    """The legit token with one segment's JSON re-serialized (same members, new bytes)."""

    def build(kit: Kit) -> str:
        parts = _parts(kit.legit())
        parts[index] = b64url(json.dumps(json.loads(unb64url(parts[index])), indent=1).encode())
        return ".".join(parts)

    return build


add("tamper.payload_reserialized_same_claims", _reserialized(1))
add("tamper.header_reserialized_same_params", _reserialized(0))
add(
    "tamper.header_extra_member",
    lambda kit: (lambda t: f"{segment(kit.header(x='y'))}.{_parts(t)[1]}.{_parts(t)[2]}")(
        kit.legit()
    ),
)
add(
    "tamper.header_of_another_token",
    lambda kit: (lambda a, b: f"{_parts(a)[0]}.{_parts(b)[1]}.{_parts(b)[2]}")(
        kit.signed(cty="x"), kit.legit()
    ),
)
add(
    "tamper.payload_of_another_token",
    lambda kit: (lambda a, b: f"{_parts(a)[0]}.{_parts(b)[1]}.{_parts(a)[2]}")(
        kit.legit(), kit.legit(sub="other")
    ),
)


# --- kid (K1, K2) ------------------------------------------------------------------------------

_INJECTED_KIDS: dict[str, object] = {
    "path_traversal": "../../../../../../dev/null",
    "path_traversal_keys_dir": "../keys/../../etc/passwd",
    "absolute_dev_null": "/dev/null",
    "sql_union": "x' UNION SELECT '1';--",
    "sql_or_true": "' OR '1'='1",
    "shell_metacharacters": "|sleep 10",
    "url_to_attacker_key": "https://attacker.example/jwks.json",
    "file_url": "file:///etc/passwd",
    "blank": "",
    "nul_byte": "abc\0",
    "newline": "abc\ndef",
    "int": 1,
    "null": None,
    "bool": True,
    "object": {"kid": "x"},
    "huge_4k": "k" * 4000,
}
for _name, _kid in _INJECTED_KIDS.items():

    def _kid_hs_empty(kit: Kit, kid: object = _kid) -> str:
        si = f"{segment(kit.header(alg='HS256', kid=kid))}.{segment(kit.claims())}"
        return f"{si}.{b64url(hmac_sign(b'', 'HS256', si))}"

    add(f"kid.{_name}_hs256_empty_key", _kid_hs_empty)
    add(f"kid.{_name}_validly_signed", lambda kit, kid=_kid: kit.signed(kid=kid))

add("kid.list_of_ours_validly_signed", lambda kit: kit.signed(kid=[kit.key.kid]))
add("kid.case_changed_validly_signed", lambda kit: kit.signed(kid=kit.key.kid.swapcase()))
add("kid.trailing_space_validly_signed", lambda kit: kit.signed(kid=kit.key.kid + " "))
add("kid.removed_validly_signed", lambda kit: kit.signed(kid=DROP))
add("kid.unknown_validly_signed", lambda kit: kit.signed(kid="unknown-kid"))
add("kid.ours_plus_nul_validly_signed", lambda kit: kit.signed(kid=kit.key.kid + "\0"))


# --- attacker keys and key-bearing headers (K3, K4, K5) -----------------------------------------


def _attacker_jwk(kit: Kit) -> dict[str, str]:
    return dict(kit.attacker().jwk)


for _alg in ALGORITHMS:
    add(
        f"attacker.{_alg}_key_same_header_same_kid",
        lambda kit, a=_alg: kit.forge(kit.header(alg=a), kit.claims(), by=kit.attacker(a)),
    )
add(
    "attacker.same_header_same_kid",
    lambda kit: kit.forge(kit.header(), kit.claims(), by=kit.attacker()),
    ALL,
)
add(
    "attacker.no_kid",
    lambda kit: kit.forge(kit.header(kid=DROP), kit.claims(), by=kit.attacker()),
    ALL,
)
add(
    "attacker.own_kid",
    lambda kit: kit.forge(kit.header(kid=kit.attacker().kid), kit.claims(), by=kit.attacker()),
    ALL,
)
add(
    "attacker.escalated_claims_same_kid",
    lambda kit: kit.forge(
        kit.header(), kit.claims(scope="echo.use echo.admin", sub="root"), by=kit.attacker()
    ),
    ALL,
)
add(
    "attacker.embedded_jwk_same_kid",
    lambda kit: kit.forge(kit.header(jwk=_attacker_jwk(kit)), kit.claims(), by=kit.attacker()),
    ALL,
)
add(
    "attacker.embedded_jwk_own_kid",
    lambda kit: kit.forge(
        kit.header(jwk=_attacker_jwk(kit), kid=kit.attacker().kid), kit.claims(), by=kit.attacker()
    ),
    ALL,
)


def _embedded_oct(kit: Kit) -> str:
    secret = b"attacker-chosen-secret-of-32-bytes!!"
    jwk = {"kty": "oct", "k": b64url(secret), "alg": "HS256"}
    si = f"{segment(kit.header(alg='HS256', jwk=jwk))}.{segment(kit.claims())}"
    return f"{si}.{b64url(hmac_sign(secret, 'HS256', si))}"


add("attacker.embedded_jwk_symmetric_oct", _embedded_oct)
for _member, _url in {
    "jku": "https://attacker.example/jwks.json",
    "x5u": "https://attacker.example/cert.pem",
}.items():
    add(
        f"attacker.{_member}_attacker_signed",
        lambda kit, m=_member, u=_url: kit.forge(
            kit.header(**{m: u}), kit.claims(), by=kit.attacker()
        ),
    )
    add(f"attacker.{_member}_validly_signed", lambda kit, m=_member, u=_url: kit.signed(**{m: u}))


def _self_signed_x5c(kit: Kit) -> str:
    attacker = kit.attacker("ES256")
    key = attacker.private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tokens.security.test")])
    when = datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(when)
        .not_valid_after(when + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding

    x5c = [base64.b64encode(cert.public_bytes(Encoding.DER)).decode()]
    return kit.forge(kit.header(alg="ES256", x5c=x5c), kit.claims(), by=attacker)


add("attacker.x5c_self_signed", _self_signed_x5c, ALL)
add("attacker.x5t_validly_signed", lambda kit: kit.signed(**{"x5t#S256": "abc", "x5t": "abc"}))


# --- crit and b64 (C1, C2) -------------------------------------------------------------------

add("crit.unknown_extension_validly_signed", lambda kit: kit.signed(crit=["x-ext"], **{"x-ext": 1}))
add("crit.registered_name_validly_signed", lambda kit: kit.signed(crit=["exp"]))
add("crit.empty_list_validly_signed", lambda kit: kit.signed(crit=[]))
add("crit.not_a_list_validly_signed", lambda kit: kit.signed(crit="x-ext", **{"x-ext": 1}))
add("crit.names_absent_member_validly_signed", lambda kit: kit.signed(crit=["x-ext"]))
add("b64.false_with_crit_validly_signed", lambda kit: kit.signed(b64=False, crit=["b64"]))
add("b64.false_without_crit_validly_signed", lambda kit: kit.signed(b64=False))
add("b64.true_with_crit_validly_signed", lambda kit: kit.signed(b64=True, crit=["b64"]))


def _detached(kit: Kit) -> str:
    header = kit.header(b64=False, crit=["b64"])
    payload = json.dumps(kit.claims(), separators=(",", ":"))
    signing_input = f"{segment(header)}.{payload}"
    from tests.security._forge import sign_with

    sig = sign_with(kit.key.private_key, kit.key.alg, signing_input)
    return f"{segment(header)}..{b64url(sig)}"


add("b64.false_detached_payload_validly_signed", _detached)


# --- serialization and structure (P1, R1) ------------------------------------------------------


def _json_serialization(kit: Kit, general: bool) -> str:
    head, body, sig = _parts(kit.legit())
    if general:
        return json.dumps({"payload": body, "signatures": [{"protected": head, "signature": sig}]})
    return json.dumps({"protected": head, "payload": body, "signature": sig})


add("serialization.json_flattened", lambda kit: _json_serialization(kit, False))
add("serialization.json_general", lambda kit: _json_serialization(kit, True))
add(
    "serialization.polyglot_cve_2022_39227",
    lambda kit: (
        lambda t: json.dumps(
            {
                f"{_parts(t)[0]}.{segment(kit.claims(sub='root'))}.": "",
                "protected": _parts(t)[0],
                "payload": _parts(t)[1],
                "signature": _parts(t)[2],
            }
        )
    )(kit.legit()),
)
add("serialization.jwe_shaped_five_segments", lambda kit: kit.legit() + ".AAAA.BBBB")
add("structure.extra_segment", lambda kit: kit.legit() + ".AAAA")
add("structure.extra_empty_segment", lambda kit: kit.legit() + ".")
add("structure.leading_dot", lambda kit: "." + kit.legit())
add("structure.empty_header_segment", lambda kit: "." + kit.legit().split(".", 1)[1])
add(
    "structure.empty_payload_segment",
    lambda kit: (lambda p: f"{p[0]}..{p[2]}")(_parts(kit.legit())),
)
add("structure.two_segments", lambda kit: ".".join(_parts(kit.legit())[:2]))
add("structure.one_segment", lambda kit: _parts(kit.legit())[0])
add("structure.only_dots", lambda kit: "..")
add("structure.many_segments", lambda kit: kit.legit() + "." * 7000)
add("structure.bearer_inside_token", lambda kit: "Bearer " + kit.legit())
add("structure.token_twice_joined_by_comma", lambda kit: kit.legit() + "," + kit.legit())
add("oversized.token_over_max_bytes", lambda kit: kit.signed(kit.claims(pad="x" * 6500)))
add("oversized.payload_1mb", lambda kit: kit.signed(kit.claims(pad="x" * 2**20)))
add("oversized.header_256k", lambda kit: kit.signed(pad="h" * 2**18))
add("oversized.signature_64k", lambda kit: kit.with_signature(kit.legit(), bytes(2**16)))
add("oversized.many_dots_1mb", lambda kit: "." * 2**20)


# --- base64url strictness (P2) --------------------------------------------------------------


def _in_segment(index: int, edit: Callable[[str], str]) -> Builder:
    def build(kit: Kit) -> str:
        parts = _parts(kit.legit())
        parts[index] = edit(parts[index])
        return ".".join(parts)

    return build


def _non_canonical(seg: str) -> str:
    """Same bytes, different text: set the unused low bits of the last character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 4, 3: 2}[len(seg) % 4]
    last = alphabet.index(seg[-1])
    changed_last = alphabet[last | ((1 << unused) - 1)]
    if changed_last == seg[-1]:
        changed_last = alphabet[last & ~((1 << unused) - 1)]
    return seg[:-1] + changed_last


for _i, _where in enumerate(("header", "payload", "signature")):
    add(
        f"encoding.{_where}_padded",
        _in_segment(_i, lambda s: s + "=" * (-len(s) % 4 or 4)),
        ALL if _where == "signature" else ES,
    )
    add(f"encoding.{_where}_space_inside", _in_segment(_i, lambda s: s[:5] + " " + s[5:]))
    add(f"encoding.{_where}_newline_inside", _in_segment(_i, lambda s: s[:5] + "\n" + s[5:]))
    add(f"encoding.{_where}_crlf_appended", _in_segment(_i, lambda s: s + "\r\n"))
    add(f"encoding.{_where}_nul_inside", _in_segment(_i, lambda s: s[:5] + "\0" + s[5:]))
    add(
        f"encoding.{_where}_plus_slash_alphabet",
        _in_segment(
            _i,
            lambda s: (
                s.replace("-", "+").replace("_", "/")
                if ("-" in s or "_" in s)
                else s[:3] + "+" + s[4:]
            ),
        ),
    )
    add(
        f"encoding.{_where}_fullwidth_letter",
        _in_segment(_i, lambda s: s[:3] + chr(0xFF21) + s[4:]),
    )
    add(f"encoding.{_where}_question_mark", _in_segment(_i, lambda s: s[:5] + "?" + s[5:]))
    add(
        f"encoding.{_where}_impossible_length",
        _in_segment(_i, lambda s: s + "A" * ((1 - len(s)) % 4 or 4)),
    )
add("encoding.signature_non_canonical_trailing_bits", _in_segment(2, _non_canonical), ES + ED)


def _payload_non_canonical(kit: Kit) -> str:
    pad = ""
    while len(body := segment(kit.claims(pad=pad))) % 4 == 0:
        pad += "x"
    return kit.sign_segments(segment(kit.header()), _non_canonical(body))


def _header_non_canonical(kit: Kit) -> str:
    pad = ""
    while len(head := segment(kit.header(x=pad))) % 4 == 0:
        pad += "x"
    return kit.sign_segments(_non_canonical(head), segment(kit.claims()))


add("encoding.payload_non_canonical_validly_signed", _payload_non_canonical)
add("encoding.header_non_canonical_validly_signed", _header_non_canonical)


# --- JSON shape (P3, P5) --------------------------------------------------------------------

for _name, _raw in {
    "array": b"[1,2]",
    "string": b'"at+jwt"',
    "number": b"1",
    "null": b"null",
    "true": b"true",
    "empty": b"",
    "invalid_json": b'{"alg":"ES256",}',
    "invalid_utf8": b'{"alg":"ES256","kid":"\xff\xfe"}',
    "deeply_nested": b'{"x":' + b"[" * 1500 + b"]" * 1500 + b"}",
}.items():
    add(f"json.header_{_name}_validly_signed", lambda kit, raw=_raw: kit.forge(raw, kit.claims()))
    add(f"json.payload_{_name}_validly_signed", lambda kit, raw=_raw: kit.forge(kit.header(), raw))

add(
    "json.header_utf16",
    lambda kit: kit.forge(json.dumps(kit.header()).encode("utf-16"), kit.claims()),
)
add(
    "json.header_utf8_bom",
    lambda kit: kit.forge(b"\xef\xbb\xbf" + json.dumps(kit.header()).encode(), kit.claims()),
)
add(
    "json.payload_utf8_bom",
    lambda kit: kit.forge(kit.header(), b"\xef\xbb\xbf" + json.dumps(kit.claims()).encode()),
)
add("json.payload_exp_1e400", lambda kit: kit.forge(kit.header(), _raw_claims(kit, exp="1e400")))


# --- duplicate members (P4): refused, in the header and the payload alike ----------------


def _dup_header(kit: Kit, member: str, first: str, last: str) -> str:
    base = json.dumps({k: v for k, v in kit.header().items() if k != member})
    text = base[:-1] + f', "{member}": {first}, "{member}": {last}}}'
    return kit.forge(text.encode(), kit.claims())


def _dup_payload(kit: Kit, member: str, first: str, last: str) -> str:
    base = json.dumps({k: v for k, v in kit.claims().items() if k != member})
    text = base[:-1] + f', "{member}": {first}, "{member}": {last}}}'
    return kit.forge(kit.header(), text.encode())


add(
    "duplicate.header_alg_none_then_ours",
    lambda kit: _dup_header(kit, "alg", '"none"', json.dumps(kit.key.alg)),
)
add(
    "duplicate.header_alg_ours_then_none",
    lambda kit: _dup_header(kit, "alg", json.dumps(kit.key.alg), '"none"'),
)
add(
    "duplicate.header_kid_other_then_ours",
    lambda kit: _dup_header(kit, "kid", '"other"', json.dumps(kit.key.kid)),
)
add(
    "duplicate.header_typ_jwt_then_at_jwt", lambda kit: _dup_header(kit, "typ", '"JWT"', '"at+jwt"')
)
add("duplicate.header_same_typ_twice", lambda kit: _dup_header(kit, "typ", '"at+jwt"', '"at+jwt"'))
add(
    "duplicate.payload_sub_root_then_legit",
    lambda kit: _dup_payload(kit, "sub", '"root"', '"svc-checkout"'),
)
add(
    "duplicate.payload_sub_legit_then_root",
    lambda kit: _dup_payload(kit, "sub", '"svc-checkout"', '"root"'),
)
add(
    "duplicate.payload_scope_admin_then_legit",
    lambda kit: _dup_payload(kit, "scope", '"echo.admin"', '"echo.use"'),
)
add(
    "duplicate.payload_exp_expired_then_valid",
    lambda kit: _dup_payload(kit, "exp", str(kit.now - 3600), str(kit.now + 300)),
)
add(
    "duplicate.payload_aud_other_then_ours",
    lambda kit: _dup_payload(kit, "aud", '"other"', json.dumps(kit.audience)),
)
add(
    "duplicate.payload_same_jti_twice",
    lambda kit: _dup_payload(kit, "jti", '"jti-hostile"', '"jti-hostile"'),
)


# --- claims, validly signed by the service's key (T1-T6) --------------------------------------

_CLAIM_CASES: dict[str, dict[str, object]] = {
    "exp_past_beyond_leeway": {"exp": -31},
    "exp_at_leeway_boundary": {"exp": -30},
    "exp_missing": {"exp": DROP},
    "exp_string": {"exp": "1800000300"},
    "exp_float": {"exp": 1_800_000_300.0},
    "exp_true": {"exp": True},
    "exp_false": {"exp": False},
    "exp_null": {"exp": None},
    "exp_list": {"exp": [1_800_000_300]},
    "exp_huge_int": {"exp": 10**30},
    "exp_2_pow_63": {"exp": 2**63},
    "exp_2_pow_64": {"exp": 2**64},
    "exp_negative": {"exp": -(10**12)},
    "nbf_future_beyond_leeway": {"nbf": 31},
    "nbf_future_1d": {"nbf": 86_400},
    "nbf_string": {"nbf": "0"},
    "nbf_true": {"nbf": True},
    "iat_future_beyond_leeway": {"iat": 31},
    "iat_missing": {"iat": DROP},
    "iat_string": {"iat": "1800000000"},
    "iat_huge_int": {"iat": 10**30},
    "iat_float": {"iat": 1_800_000_000.5},
    "aud_missing": {"aud": DROP},
    "aud_other": {"aud": "other"},
    "aud_prefix": {"aud": "ech"},
    "aud_superstring": {"aud": "echo2"},
    "aud_case": {"aud": "ECHO"},
    "aud_list_without_ours": {"aud": ["other", "orders"]},
    "aud_empty_list": {"aud": []},
    "aud_list_with_non_string": {"aud": ["echo", 1]},
    "aud_null": {"aud": None},
    "aud_object": {"aud": {"echo": True}},
    "iss_missing": {"iss": DROP},
    "iss_other": {"iss": "https://attacker.example"},
    "iss_case": {"iss": "HTTPS://TOKENS.SECURITY.TEST"},
    "iss_prefix": {"iss": "https://tokens.security"},
    "iss_suffix": {"iss": "https://tokens.security.test.attacker.example"},
    "iss_trailing_slash": {"iss": "https://tokens.security.test/"},
    "iss_list": {"iss": ["https://tokens.security.test"]},
    "iss_null": {"iss": None},
    "sub_missing": {"sub": DROP},
    "sub_empty": {"sub": ""},
    "sub_int": {"sub": 1},
    "jti_missing": {"jti": DROP},
    "jti_empty": {"jti": ""},
    "jti_object": {"jti": {"a": 1}},
    "scope_list": {"scope": ["echo.use"]},
    "client_id_int": {"client_id": 7},
}
_RELATIVE = {"exp", "nbf", "iat"}
for _name, _changes in _CLAIM_CASES.items():

    def _claims_case(kit: Kit, changes: dict[str, object] = _changes) -> str:
        resolved = {
            k: (kit.now + v if k in _RELATIVE and type(v) is int and abs(v) < 10**9 else v)
            for k, v in changes.items()
        }
        return kit.signed(kit.claims(**resolved))

    add(f"claims.{_name}", _claims_case)

for _claim, _name, _raw_text in (
    ("exp", "exp_nan", "NaN"),
    ("exp", "exp_infinity", "Infinity"),
    ("exp", "exp_minus_infinity", "-Infinity"),
    ("iat", "iat_nan", "NaN"),
):
    add(
        f"claims.{_name}",
        lambda kit, n=_claim, raw=_raw_text: kit.forge(kit.header(), _raw_claims(kit, **{n: raw})),
    )

add("claims.exp_5000_digits", lambda kit: kit.forge(kit.header(), _raw_claims(kit, exp="9" * 5000)))
add(
    "claims.expired_long_ago",
    lambda kit: kit.signed(
        kit.claims(exp=kit.now - 86_400, iat=kit.now - 90_000, nbf=kit.now - 90_000)
    ),
)

for _typ_name, _typ in {
    "jwt": "JWT",
    "missing": DROP,
    "empty": "",
    "trailing_space": "at+jwt ",
    "id_token": "id+jwt",
    "application_jwt": "application/jwt",
    "number": 1,
    "null": None,
}.items():
    add(f"typ.{_typ_name}_validly_signed", lambda kit, t=_typ: kit.signed(typ=t))


def expand() -> Iterator[tuple[str, Case]]:
    """Every (algorithm, case) pair, the unit of the parametrized suite."""
    for entry in CASES:
        for alg in entry.algs:
            yield alg, entry


def case_id(alg: str, entry: Case) -> str:
    """The test id: ``ES256-alg_none.none_without_signature``."""
    return f"{alg}-{entry.name}"


def assert_unique_names() -> None:
    """Names are ids: no two cases may share one."""
    names = [entry.name for entry in CASES]
    duplicates = {name for name in names if names.count(name) > 1}
    assert not duplicates, duplicates
