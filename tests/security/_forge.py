"""Forging tokens: the raw material of the hostile-token catalogue.

Everything is built by hand from bytes, so a case can carry exactly the header, payload
and signature the attack needs (duplicate members, non-objects, invalid UTF-8, wrong
encodings). ``Kit`` holds the service's own signing key, so "insider" cases carry a
genuine signature over the hostile content, and attacker keys that are not trusted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from bearer_grpc.core.keys import SigningKey

DROP: Any = object()
"""Marks a member to remove from the default header or claims."""


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWS uses it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Inverse of :func:`b64url` (lenient: for taking legit tokens apart)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def compact_json(value: Any) -> bytes:
    """Compact JSON bytes of ``value``."""
    return json.dumps(value, separators=(",", ":")).encode()


def segment(value: Any) -> str:
    """A JWS segment: bytes as they are, anything else as compact JSON."""
    return b64url(value if isinstance(value, bytes) else compact_json(value))


def changed(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied (``DROP`` removes a member)."""
    out = dict(base)
    for name, value in changes.items():
        if value is DROP:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def sign_with(private_key: Any, alg: str, signing_input: str) -> bytes:
    """A JWS signature (raw R||S for ECDSA) of ``signing_input`` by ``private_key``."""
    return bytes(jwt.get_algorithm_by_name(alg).sign(signing_input.encode(), private_key))


def hmac_sign(secret: bytes, alg: str, signing_input: str) -> bytes:
    """HMAC by hand: PyJWT refuses PEM-looking secrets, an attacker does not."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return hmac.new(secret, signing_input.encode(), digest).digest()


@dataclass(frozen=True)
class Kit:
    """What forging needs: the victim's key, issuer, audience and time; attacker keys.

    Attributes:
        key: The TokenService's own signing key (its public half is trusted).
        issuer: The service's ``iss``.
        audience: The protected service's audience.
        now: The frozen time every verifier reads.
        leeway: The verifiers' leeway, seconds.
        attackers: An untrusted key per algorithm.
    """

    key: SigningKey
    issuer: str
    audience: str
    now: int
    leeway: int
    attackers: Mapping[str, SigningKey] = field(repr=False)

    def claims(self, **changes: Any) -> dict[str, Any]:
        """Valid claims for the audience, with ``changes``."""
        base = {
            "iss": self.issuer,
            "sub": "svc-checkout",
            "aud": self.audience,
            "exp": self.now + 300,
            "iat": self.now,
            "nbf": self.now,
            "jti": "jti-hostile",
            "client_id": "svc-checkout",
            "scope": "echo.use",
        }
        return changed(base, changes)

    def header(self, **changes: Any) -> dict[str, Any]:
        """The service's header ``{alg, kid, typ}``, with ``changes``."""
        return changed({"alg": self.key.alg, "kid": self.key.kid, "typ": "at+jwt"}, changes)

    def forge(self, header: Any, payload: Any, *, by: SigningKey | None = None) -> str:
        """A compact JWS of exactly ``header`` and ``payload`` (values or raw bytes),
        signed by ``by`` (default: the service's own key) with that key's algorithm."""
        signer = by or self.key
        signing_input = f"{segment(header)}.{segment(payload)}"
        signature = sign_with(signer.private_key, signer.alg, signing_input)
        return f"{signing_input}.{b64url(signature)}"

    def sign_segments(self, head: str, body: str) -> str:
        """Sign the exact segment text ``head.body`` with the service's key (for
        non-canonical encodings an insider might produce)."""
        signature = sign_with(self.key.private_key, self.key.alg, f"{head}.{body}")
        return f"{head}.{body}.{b64url(signature)}"

    def signed(self, payload: Any = None, **header_changes: Any) -> str:
        """Signed by the service's key: only the changed part can be at fault."""
        payload = self.claims() if payload is None else payload
        return self.forge(self.header(**header_changes), payload)

    def legit(self, **claim_changes: Any) -> str:
        """A token every path must accept (the control of every family)."""
        return self.signed(self.claims(**claim_changes))

    def with_signature(self, token: str, signature: bytes | str) -> str:
        """``token``'s header and payload with another signature (bytes or segment)."""
        head, body, _ = token.split(".")
        sig = signature if isinstance(signature, str) else b64url(signature)
        return f"{head}.{body}.{sig}"

    def original_signature(self) -> bytes:
        """The signature of :meth:`legit`: what a tamperer keeps."""
        return unb64url(self.legit().split(".")[2])

    def resign_header(self, header: Any, payload: Any = None) -> str:
        """``header``/``payload`` with the legit token's signature kept."""
        payload = self.claims() if payload is None else payload
        return f"{segment(header)}.{segment(payload)}.{b64url(self.original_signature())}"

    def attacker(self, alg: str | None = None) -> SigningKey:
        """An untrusted key of ``alg`` (default: the service key's algorithm)."""
        return self.attackers[alg or self.key.alg]
