"""Signing keys, public key sets and private keys at rest.

A key is bound to exactly one JWS algorithm (RFC 8725 §2.1): verifiers take the
algorithm from the key, never from the token. ``kid`` is the RFC 7638 thumbprint of the
public key. Private keys are kept as PKCS#8, sealed with AES-256-GCM under a
key-encryption key when one is configured; they never appear in a JWKS, a ``repr``, a
log line or an error message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bearer_grpc.core.errors import KeyMaterialError

Algorithm = Literal["ES256", "EdDSA", "RS256"]
"""The signing algorithms bearer_grpc issues with."""

ALGORITHMS: Final[tuple[Algorithm, ...]] = ("ES256", "EdDSA", "RS256")
"""Every supported signing algorithm, the default first."""

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey

MIN_RSA_BITS: Final = 2048
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_THUMBPRINT_MEMBERS: Final = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}
_ALG_KEY_TYPE: Final = {
    "ES256": ("EC", "P-256"),
    "EdDSA": ("OKP", "Ed25519"),
    "RS256": ("RSA", None),
}
_SEALED_PREFIX: Final = b"bgk1:"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64url(value: int, length: int | None = None) -> str:
    size = length or max(1, (value.bit_length() + 7) // 8)
    return _b64url(value.to_bytes(size, "big"))


def generate_private_key(alg: Algorithm) -> PrivateKey:
    """Generate a new private key for ``alg``.

    Raises:
        KeyMaterialError: ``alg`` is not supported.
    """
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise KeyMaterialError("unsupported algorithm")


def public_jwk(private_key: PrivateKey, alg: Algorithm) -> dict[str, str]:
    """The public JWK (RFC 7517) of a private key, with ``kid``, ``alg`` and ``use``."""
    jwk: dict[str, str]
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        numbers = private_key.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _int_b64url(numbers.x, 32),
            "y": _int_b64url(numbers.y, 32),
        }
    elif isinstance(private_key, ed25519.Ed25519PrivateKey):
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
    else:
        rsa_numbers = private_key.public_key().public_numbers()
        jwk = {"kty": "RSA", "n": _int_b64url(rsa_numbers.n), "e": _int_b64url(rsa_numbers.e)}
    jwk["kid"] = thumbprint(jwk)
    jwk["alg"] = alg
    jwk["use"] = "sig"
    return jwk


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key.

    Raises:
        KeyMaterialError: The key type is unknown or a required member is missing.
    """
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or any(not isinstance(jwk.get(m), str) for m in members):
        raise KeyMaterialError("key has no thumbprint")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


class KeyEncryptionKey:
    """Seals private keys at rest with AES-256-GCM; the key id is bound as associated data.

    Args:
        material: At least 32 bytes of secret material (e.g. ``openssl rand -base64 32``);
            an AES key is derived from it with HKDF-SHA256.

    Raises:
        KeyMaterialError: The material is shorter than 32 bytes.
    """

    def __init__(self, material: bytes) -> None:
        material = material.strip()
        if len(material) < 32:
            raise KeyMaterialError("key-encryption key must have at least 32 bytes")
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"bearer-grpc key sealing v1"
        ).derive(material)
        self._aead = AESGCM(derived)

    def __repr__(self) -> str:
        return "KeyEncryptionKey(<hidden>)"

    def seal(self, kid: str, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` for the key ``kid``."""
        nonce = os.urandom(12)
        return _SEALED_PREFIX + nonce + self._aead.encrypt(nonce, plaintext, kid.encode())

    def open(self, kid: str, sealed: bytes) -> bytes:
        """Decrypt what :meth:`seal` produced for ``kid``.

        Raises:
            KeyMaterialError: Wrong key-encryption key, wrong kid or damaged data.
        """
        body = sealed[len(_SEALED_PREFIX) :]
        try:
            return self._aead.decrypt(body[:12], body[12:], kid.encode())
        except Exception as err:
            raise KeyMaterialError("cannot decrypt private key: wrong key-encryption key?") from err


def is_sealed(private_key: bytes) -> bool:
    """Whether stored private key material is encrypted with a key-encryption key."""
    return private_key.startswith(_SEALED_PREFIX)


@dataclass(frozen=True)
class SigningKey:
    """A private key bound to one algorithm, with its public JWK.

    Attributes:
        kid: RFC 7638 thumbprint.
        alg: The algorithm it signs with.
        private_key: The key object (hidden from ``repr``).
        jwk: Its public JWK.
    """

    kid: str
    alg: Algorithm
    private_key: PrivateKey = field(repr=False)
    jwk: Mapping[str, str] = field(repr=False)

    @classmethod
    def generate(cls, alg: Algorithm = "ES256") -> SigningKey:
        """Create a fresh key for ``alg``."""
        private_key = generate_private_key(alg)
        jwk = public_jwk(private_key, alg)
        return cls(kid=jwk["kid"], alg=alg, private_key=private_key, jwk=jwk)

    def export_private(self, kek: KeyEncryptionKey | None) -> bytes:
        """PKCS#8 PEM of the private key, sealed with ``kek`` when given."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return kek.seal(self.kid, pem) if kek is not None else pem

    @classmethod
    def load(
        cls, kid: str, alg: str, private_key: bytes, kek: KeyEncryptionKey | None
    ) -> SigningKey:
        """Load a key exported with :meth:`export_private` and check it is what it claims.

        Raises:
            KeyMaterialError: Sealed without a ``kek`` given, undecryptable, not a key of ``alg``,
                or its thumbprint is not ``kid``.
        """
        if alg not in ALGORITHMS:
            raise KeyMaterialError("unsupported algorithm")
        if is_sealed(private_key):
            if kek is None:
                raise KeyMaterialError("private keys are encrypted: a key-encryption key is needed")
            private_key = kek.open(kid, private_key)
        try:
            loaded = serialization.load_pem_private_key(private_key, password=None)
        except ValueError as err:
            raise KeyMaterialError("unreadable private key") from err
        algorithm: Algorithm = alg
        if not isinstance(loaded, _PRIVATE_TYPES[algorithm]) or not _strong_enough(loaded):
            raise KeyMaterialError("private key does not match its algorithm")
        key = cast(PrivateKey, loaded)
        jwk = public_jwk(key, algorithm)
        if jwk["kid"] != kid:
            raise KeyMaterialError("private key does not match its kid")
        return cls(kid=kid, alg=algorithm, private_key=key, jwk=jwk)

    def sign(self, claims: Mapping[str, Any], *, typ: str = "at+jwt") -> str:
        """A compact JWS of ``claims`` with header ``{alg, kid, typ}``."""
        return jwt.encode(
            dict(claims),
            self.private_key,
            algorithm=self.alg,
            headers={"kid": self.kid, "typ": typ},
        )


def _strong_enough(key: object) -> bool:
    """ES256 keys on P-256 only; RSA keys of at least 2048 bits."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return isinstance(key.curve, ec.SECP256R1)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.key_size >= MIN_RSA_BITS
    return True


_PRIVATE_TYPES: Final = {
    "ES256": ec.EllipticCurvePrivateKey,
    "EdDSA": ed25519.Ed25519PrivateKey,
    "RS256": rsa.RSAPrivateKey,
}


class PublicKeySet(Mapping[str, jwt.PyJWK]):
    """Trusted public keys by ``kid``, each bound to its algorithm (a read-only mapping).

    Built from a JWKS (RFC 7517) and checked for hygiene: every key has a string ``kid``
    (unique), a supported ``alg`` consistent with its ``kty``/``crv``, ``use`` ``sig`` if
    present, no private or symmetric members, and RSA keys of at least 2048 bits.

    This strict reading refuses the whole set for one bad key: right for a key set
    given in configuration or published by a TokenService. :meth:`skipping` reads an
    identity provider's set, which may hold keys for other uses.

    Args:
        jwks: A JWKS object ``{"keys": [...]}``.

    Raises:
        KeyMaterialError: The set or one of its keys breaks a rule above.
    """

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys: dict[str, jwt.PyJWK] = {}
        self._jwks: list[dict[str, Any]] = []
        for jwk in _key_list(jwks):
            kid, pyjwk = _check_public_jwk(jwk)
            if kid in self._keys:
                raise KeyMaterialError("duplicate kid in JWKS")
            self._keys[kid] = pyjwk
            self._jwks.append(dict(jwk))

    @classmethod
    def skipping(cls, jwks: Mapping[str, Any]) -> tuple[PublicKeySet, tuple[str, ...]]:
        """The usable keys of a remote JWKS, skipping each key that breaks a rule.

        The same rules as the strict reading, one key at a time: a key that fails is
        left out, with the reason, and the others stay (so one encryption key in an
        identity provider's set does not stop verification). A key without ``alg``
        gets the one algorithm bearer_grpc verifies for its type (EC P-256: ES256,
        Ed25519: EdDSA, RSA: RS256). Every key of a ``kid`` given twice is left out.

        Returns:
            The key set and the reasons for the keys left out (no key material in them).

        Raises:
            KeyMaterialError: Not a JWKS object, or no key passes.
        """
        found: dict[str, tuple[jwt.PyJWK, dict[str, Any]]] = {}
        skipped: list[str] = []
        duplicated: set[str] = set()
        for index, jwk in enumerate(_key_list(jwks)):
            try:
                kid, pyjwk = _check_public_jwk(jwk, infer_alg=True)
            except KeyMaterialError as err:
                skipped.append(f"key {index}: {err.message}")
                continue
            if kid in found or kid in duplicated:
                duplicated.add(kid)
                skipped.append(f"key {index}: duplicate kid in JWKS")
                continue
            found[kid] = (pyjwk, {**jwk, "alg": pyjwk.algorithm_name})
        for kid in duplicated:
            found.pop(kid, None)
        if not found:
            raise KeyMaterialError("JWKS holds no usable signature key")
        keys = cls({"keys": []})
        for kid, (pyjwk, jwk) in found.items():
            keys._keys[kid] = pyjwk
            keys._jwks.append(jwk)
        return keys, tuple(skipped)

    @classmethod
    def from_json(cls, text: str) -> PublicKeySet:
        """Parse a JWKS document.

        Raises:
            KeyMaterialError: Not JSON, or not a valid key set.
        """
        try:
            return cls(json.loads(text))
        except (ValueError, RecursionError) as err:
            if isinstance(err, KeyMaterialError):
                raise
            raise KeyMaterialError("JWKS is not valid JSON") from err

    def __getitem__(self, kid: str) -> jwt.PyJWK:
        return self._keys[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"PublicKeySet(kids={list(self._keys)!r})"

    def to_json(self) -> str:
        """The JWKS document (public members only)."""
        return json.dumps({"keys": self._jwks}, separators=(",", ":"), sort_keys=True)


def _key_list(jwks: object) -> list[Any]:
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise KeyMaterialError("JWKS must be an object with a 'keys' list")
    return keys


_KEY_TYPE_ALG: Final[dict[tuple[object, object], str]] = {
    key_type: alg for alg, key_type in _ALG_KEY_TYPE.items()
}


def _check_public_jwk(jwk: object, *, infer_alg: bool = False) -> tuple[str, jwt.PyJWK]:
    if not isinstance(jwk, Mapping):
        raise KeyMaterialError("JWKS key must be an object")
    if _PRIVATE_MEMBERS & set(jwk):
        raise KeyMaterialError("JWKS must hold public keys only")
    kid, alg, kty = jwk.get("kid"), jwk.get("alg"), jwk.get("kty")
    if not isinstance(kid, str) or not kid:
        raise KeyMaterialError("JWKS key needs a string kid")
    if alg is None and infer_alg:
        alg = _KEY_TYPE_ALG.get((kty, None if kty == "RSA" else jwk.get("crv")))
    if not isinstance(alg, str) or alg not in _ALG_KEY_TYPE:
        raise KeyMaterialError("JWKS key needs a supported alg")
    want_kty, want_crv = _ALG_KEY_TYPE[alg]
    if kty != want_kty or (want_crv is not None and jwk.get("crv") != want_crv):
        raise KeyMaterialError("JWKS key type does not match its alg")
    key_ops = jwk.get("key_ops", ["verify"])
    if jwk.get("use", "sig") != "sig" or not isinstance(key_ops, list) or "verify" not in key_ops:
        raise KeyMaterialError("JWKS key is not a signature key")
    try:
        pyjwk = jwt.PyJWK(dict(jwk), algorithm=alg)
    except jwt.PyJWTError as err:
        raise KeyMaterialError("unusable JWKS key") from err
    if isinstance(pyjwk.key, rsa.RSAPublicKey) and pyjwk.key.key_size < MIN_RSA_BITS:
        raise KeyMaterialError("RSA key shorter than 2048 bits")
    return kid, pyjwk
