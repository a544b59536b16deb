"""Every encoding of a public key an attacker might feed to HMAC (key confusion).

McLean 2015; PyJWT CVE-2017-11424 (PKCS#1 PEM), CVE-2022-29217 (OpenSSH), GHSA-xgmm-8j9v-c9wx
(JWK JSON): a verifier that lets the token pick HS256 and hands it "the key" as bytes
verifies a MAC keyed with public material. bearer_grpc never has an HMAC key at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from bearer_grpc.core.keys import SigningKey

Encoder = Callable[[SigningKey], bytes]

_PEM, _DER = serialization.Encoding.PEM, serialization.Encoding.DER
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


def _public(
    key: SigningKey,
) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey:
    return key.private_key.public_key()


def spki_pem(key: SigningKey) -> bytes:
    """SubjectPublicKeyInfo PEM, trailing newline included (as files hold it)."""
    return _public(key).public_bytes(_PEM, _SPKI)


def spki_pem_no_newline(key: SigningKey) -> bytes:
    """The PEM without its trailing newline (as a config value often holds it)."""
    return spki_pem(key).rstrip(b"\n")


def spki_der(key: SigningKey) -> bytes:
    """SubjectPublicKeyInfo DER."""
    return _public(key).public_bytes(_DER, _SPKI)


def openssh(key: SigningKey) -> bytes:
    """OpenSSH one-line form (``ssh-ed25519 AAAA...``, ``ecdsa-sha2-nistp256 ...``)."""
    return _public(key).public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )


def raw(key: SigningKey) -> bytes:
    """Raw public value: EC uncompressed point, Ed25519 32 bytes, RSA modulus."""
    public = _public(key)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    if isinstance(public, ed25519.Ed25519PublicKey):
        return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    n = public.public_numbers().n
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def compressed_or_pkcs1(key: SigningKey) -> bytes:
    """EC compressed point; RSA PKCS#1 PEM (CVE-2017-11424); Ed25519 raw as base64url."""
    public = _public(key)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )
    if isinstance(public, rsa.RSAPublicKey):
        return public.public_bytes(_PEM, serialization.PublicFormat.PKCS1)
    return key.jwk["x"].encode()


def jwk_json(key: SigningKey) -> bytes:
    """The public JWK as compact JSON (GHSA-xgmm-8j9v-c9wx)."""
    return json.dumps(dict(key.jwk), separators=(",", ":"), sort_keys=True).encode()


def jwk_json_pretty(key: SigningKey) -> bytes:
    """The public JWK as indented JSON with a trailing newline."""
    return json.dumps(dict(key.jwk), indent=2).encode() + b"\n"


def jwks_json(key: SigningKey) -> bytes:
    """The whole JWKS document as GetJwks publishes it."""
    return json.dumps({"keys": [dict(key.jwk)]}, separators=(",", ":"), sort_keys=True).encode()


ENCODINGS: dict[str, Encoder] = {
    "spki_pem": spki_pem,
    "spki_pem_no_newline": spki_pem_no_newline,
    "spki_der": spki_der,
    "openssh": openssh,
    "raw_point": raw,
    "compressed_or_pkcs1": compressed_or_pkcs1,
    "jwk_json": jwk_json,
    "jwk_json_pretty": jwk_json_pretty,
    "jwks_json": jwks_json,
}
"""Name -> encoder of the service key's public half."""
