"""Client secrets, passwords and refresh tokens: generating, hashing, comparing.

- Client secrets are 256-bit random values; only an HMAC-SHA256 under a per-deployment
  key is stored, compared in constant time.
- Passwords are stored with scrypt (RFC 7914), a slow memory-hard hash; when no user
  matches, a dummy hash is still computed so both cases take the same time.
- Refresh tokens are 256-bit random values; only their SHA-256 is stored (the value is
  high-entropy, so a fast hash is safe).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from typing import Final

SECRET_BYTES: Final = 32
"""Random bytes in a client secret or refresh token (256 bits)."""
MAX_SECRET_LENGTH: Final = 512
"""Longest secret, password or refresh token accepted before any hashing."""

_SCRYPT_N: Final = 2**17  # OWASP password storage minimum for scrypt
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_SCRYPT_LEN: Final = 32


def new_secret() -> str:
    """A fresh 256-bit random secret, base64url without padding (43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def new_id(prefix: str = "") -> str:
    """A fresh 128-bit random identifier (token ids, refresh families), in hex.

    It never starts with ``-``, so it can follow a command-line flag.
    """
    return prefix + secrets.token_hex(16)


class SecretHasher:
    """Keyed hashing of high-entropy client secrets.

    Args:
        key: The per-deployment hashing key (kept in the store's settings).
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "SecretHasher(<hidden>)"

    def hash(self, secret: str) -> str:
        """The stored form of ``secret``."""
        digest = hmac.new(self._key, secret.encode("utf-8"), hashlib.sha256).hexdigest()
        return "hmac-sha256$" + digest

    def verify(self, secret: str, stored: str | None) -> bool:
        """Whether ``secret`` matches ``stored``, in constant time.

        When ``stored`` is None (no such client), a hash is still computed and compared,
        so an unknown client and a wrong secret cost the same.
        """
        candidate = self.hash(secret)
        reference = stored if stored is not None else "hmac-sha256$" + "0" * 64
        return hmac.compare_digest(candidate.encode(), reference.encode()) and stored is not None


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The stored form of a password: ``scrypt$N$r$p$salt$hash``."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return "$".join(
        ["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)]
    )


@functools.cache
def _dummy_password_hash() -> str:
    return hash_password("", salt=b"\0" * 16)


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``, in constant time.

    When ``stored`` is None (no such user) or unreadable, a dummy hash is checked
    instead, so an unknown user costs as much as a wrong password.
    """
    parts = (stored or _dummy_password_hash()).split("$")
    try:
        name, n, r, p, salt, digest = parts
        if name != "scrypt":
            raise ValueError(name)
        params = (int(n), int(r), int(p))
        if not _usable_scrypt_params(*params):
            raise ValueError("scrypt parameters out of range")
        expected, salt_bytes = _unb64(digest), _unb64(salt)
    except ValueError:
        params, expected, salt_bytes = (_SCRYPT_N, _SCRYPT_R, _SCRYPT_P), b"\1" * 32, b"\0" * 16
        stored = None
    actual = _scrypt(password, salt_bytes, *params)
    return hmac.compare_digest(actual, expected) and stored is not None


def _usable_scrypt_params(n: int, r: int, p: int) -> bool:
    """Parameters a stored hash may name: bounded so a bad row cannot exhaust memory."""
    return 2 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16


def refresh_token_hash(value: str) -> str:
    """The stored form (SHA-256 hex) of a refresh token value."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * 1024 * 1024,
        dklen=_SCRYPT_LEN,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
