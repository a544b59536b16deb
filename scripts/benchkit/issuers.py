"""Section "issuers": a verifier for another identity provider's tokens.

An ES256 token shaped like Keycloak's (``typ: JWT``, ``azp``, ``realm_access``), its
keys published by a local HTTP server on loopback (discovery document and JWKS):

- ``hit``: ``Verifier.lookup`` of a cached token, on a ``from_jwks_url`` verifier with
  ``TokenProfile.keycloak()``; ``hit_any_of``: the same through ``Verifier.any_of`` with
  a TokenService-style verifier routed first (CPU µs per call);
- ``miss``: ``Verifier.verify`` with the cache disabled, next to PyJWT's ``jwt.decode``
  of the same token with the same key, audience and issuer (ratio per round, medianed);
- ``first_call``: wall time from ``Verifier.from_issuer(...)`` to its first verified
  call returning (discovery, JWKS, one signature), milliseconds, one fresh verifier and
  a fresh connection per sample.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

import bearer_grpc
from bearer_grpc import TokenProfile
from bearer_grpc.core.keys import SigningKey
from bearer_grpc.testing import TestIssuer
from benchkit.micro import time_call
from benchkit.stats import median, percentile, ratios, round_order

AUDIENCE = "orders"


@contextmanager
def idp(key: SigningKey) -> Iterator[str]:
    """A local identity provider publishing ``key``: yields its issuer URL."""
    documents: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer = f"http://127.0.0.1:{server.server_address[1]}/realms/shop"
    documents["/realms/shop/.well-known/openid-configuration"] = json.dumps(
        {"issuer": issuer, "jwks_uri": f"{issuer}/certs"}
    ).encode()
    documents["/realms/shop/certs"] = json.dumps({"keys": [dict(key.jwk)]}).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()


def keycloak_token(key: SigningKey, issuer: str) -> str:
    """An access token as Keycloak shapes it."""
    now = int(time.time())
    claims = {
        "exp": now + 86_400, "iat": now, "jti": "bench-jti", "iss": issuer,
        "aud": [AUDIENCE, "account"], "sub": "bench-service-account", "typ": "Bearer",
        "azp": "bench", "client_id": "bench", "scope": "profile orders.read",
        "realm_access": {"roles": ["offline_access"]},
    }  # fmt: skip
    return key.sign(claims, typ="JWT")


def first_call_ms(issuer: str, token: str) -> float:
    """Wall ms from constructing ``from_issuer`` to its first verified call."""
    started = time.perf_counter()
    with bearer_grpc.Verifier.from_issuer(
        issuer, audience=AUDIENCE, profile=TokenProfile.keycloak()
    ) as verifier:
        verifier.verify(token)
        return (time.perf_counter() - started) * 1000


def run(settings: dict[str, Any]) -> dict[str, Any]:
    """Time the cases in interleaved rounds; return the "issuers" section."""
    key = SigningKey.generate("ES256")
    with idp(key) as issuer:
        token = keycloak_token(key, issuer)
        url, profile = f"{issuer}/certs", TokenProfile.keycloak()
        cached = bearer_grpc.Verifier.from_jwks_url(
            url, issuer=issuer, audience=AUDIENCE, profile=profile
        )
        uncached = bearer_grpc.Verifier.from_jwks_url(
            url, issuer=issuer, audience=AUDIENCE, profile=profile, cache_size=0
        )
        ours = TestIssuer().verifier(audience=AUDIENCE)
        routed = bearer_grpc.Verifier.any_of(ours, cached)
        cached.verify(token)
        if cached.lookup(token) is None or routed.lookup(token) is None:
            raise SystemExit("issuers: a verified token was not cached")
        public = jwt.PyJWK(dict(key.jwk)).key
        calls: dict[str, Callable[[], object]] = {
            "hit": functools.partial(cached.lookup, token),
            "hit_any_of": functools.partial(routed.lookup, token),
            "miss": functools.partial(uncached.verify, token),
            "pyjwt": functools.partial(
                jwt.decode, token, public, algorithms=["ES256"], audience=AUDIENCE, issuer=issuer
            ),
        }
        for call in calls.values():
            call()
        samples: dict[str, list[float]] = {name: [] for name in calls}
        first: list[float] = []
        for index in range(settings["micro_rounds"]):
            for name in round_order(list(calls), index):
                samples[name].append(time_call(calls[name], settings["micro_seconds"]))
            first += [first_call_ms(issuer, token) for _ in range(settings["first_calls"])]
        for verifier in (cached, uncached, ours):
            verifier.close()
    first.sort()
    section: dict[str, Any] = {
        "settings": {k: settings[k] for k in ("micro_rounds", "micro_seconds", "first_calls")},
        "token": "ES256, shaped as Keycloak's, TokenProfile.keycloak()",
        "unit": "CPU µs of the measuring thread per call; first_call: wall ms",
    }
    for name, values in samples.items():
        section[f"{name}_us"] = median(values)
        section[f"{name}_rounds_us"] = values
    section["miss_over_pyjwt"] = median(ratios(samples["miss"], samples["pyjwt"]))
    section["first_call_ms"] = median(first)
    section["first_call_p90_ms"] = percentile(first, 90)
    section["first_call_samples"] = len(first)
    return section
