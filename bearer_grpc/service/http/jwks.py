"""The JWKS answer: body, ``ETag`` and ``Cache-Control`` for one published key set.

Pure. The body is the key set exactly as the rules publish it (signing keys only, each
with ``kid``, ``alg`` and ``use``). ``max-age`` is half the pre-publish window (at most
an hour): a cache that honours it has fetched a staged key twice before the key signs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

MAX_AGE_LIMIT: Final = 3600
"""Longest ``max-age`` sent, whatever the window."""


@dataclass(frozen=True)
class JwksAnswer:
    """What ``GET /jwks`` answers for one key set.

    Attributes:
        body: The JWKS, UTF-8 JSON.
        etag: A strong entity tag of ``body``.
        cache_control: The ``Cache-Control`` value.
    """

    body: bytes
    etag: str
    cache_control: str

    @classmethod
    def of(cls, jwks_json: str, *, publish_delay: int) -> JwksAnswer:
        """The answer for ``jwks_json`` under a pre-publish window of ``publish_delay`` s."""
        body = jwks_json.encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        max_age = min(publish_delay // 2, MAX_AGE_LIMIT)
        return cls(body, etag, f"public, max-age={max_age}")

    def not_modified(self, if_none_match: str | None) -> bool:
        """Whether ``If-None-Match`` names this answer (RFC 9110 §13.1.2, weak compare)."""
        if if_none_match is None:
            return False
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or self.etag in tags
