"""Section "memory": what the verified-token cache costs, and that its bound holds.

Tokens are distinct ES256 tokens signed beforehand; each is put in the cache the way a
server does it, by ``Verifier.verify`` of a fresh copy of the string (as each call's
metadata is). ``tracemalloc`` measures what stays allocated after the fill: the principal,
the cache entry, dict growth, and the token string if the cache keeps it alive.

The bound: a verifier with ``cache_size=M`` verifies 2M distinct tokens; its cache must
hold exactly M and the memory traced after 2M must be no more than after M (plus slack).
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from typing import Any

from bearer_grpc.testing import TestIssuer

AUDIENCE = "bench"


def _tokens(issuer: TestIssuer, count: int, tag: str) -> list[str]:
    return [
        issuer.token(subject=f"{tag}-{i}", audience=AUDIENCE, lifetime=86_400) for i in range(count)
    ]


def bytes_per_token(issuer: TestIssuer, tokens: list[str]) -> dict[str, Any]:
    """Fill a cache of ``len(tokens)`` entries through ``Verifier.verify``; bytes each."""
    count = len(tokens)
    verifier = issuer.verifier(audience=AUDIENCE, cache_size=count)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for token in tokens:
            verifier.verify(token.encode().decode())  # a new string, as from a call
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    cached = len(verifier.local.cache)
    if cached != count:
        raise SystemExit(f"memory: {cached} of {count} tokens cached")
    return {
        "tokens": count,
        "token_length": len(tokens[0]),
        "bytes_per_token": (after - before) / count,
    }


def bound(issuer: TestIssuer, max_size: int) -> dict[str, Any]:
    """Verify 2 x ``max_size`` distinct tokens with ``cache_size=max_size``."""
    tokens = _tokens(issuer, 2 * max_size, f"b{max_size}")
    verifier = issuer.verifier(audience=AUDIENCE, cache_size=max_size)
    cache = verifier.local.cache
    sizes = []
    for start in (0, max_size):
        for token in tokens[start : start + max_size]:
            verifier.verify(token)
        sizes.append(len(cache))
    return {
        "max_size": max_size,
        "filled": 2 * max_size,
        "size_after_max": sizes[0],
        "size_after_2x_max": sizes[1],
        "bounded": sizes[1] == max_size,
        "newest_kept": cache.get(tokens[-1], issuer.clock()) is not None,
        "oldest_evicted": cache.get(tokens[0], issuer.clock()) is None,
    }


def run(settings: dict[str, Any], progress: bool) -> dict[str, Any]:
    """Measure; return the "memory" section."""
    issuer = TestIssuer()
    section: dict[str, Any] = {
        "method": "tracemalloc around Verifier.verify of fresh copies of N distinct ES256 "
        "tokens (a token string counts only if the cache keeps it)",
        "sizes": [],
    }
    tokens = _tokens(issuer, max(settings["memory_sizes"]), "m")  # each size a fresh verifier
    for count in settings["memory_sizes"]:
        result = bytes_per_token(issuer, tokens[:count])
        section["sizes"].append(result)
        if progress:
            print(
                f"  memory {count:,} tokens: {result['bytes_per_token']:,.0f} B/token",
                file=sys.stderr,
                flush=True,
            )
    section["bound"] = bound(issuer, settings["bound_max"])
    return section
