"""Section "micro": verifying one token, in process, per algorithm (µs per call).

CPU µs of the measuring thread per call (robust to other processes on the machine). For
each of ES256, EdDSA, RS256 and HS256, on the same token:

- ``raw``: ``cryptography`` verifying the token's signature over its signing input (the
  floor; base64 decoding and DER conversion done beforehand);
- ``pyjwt``: ``jwt.decode(token, key, algorithms=[alg], audience=..., issuer=...)``;
- ``miss``: ``bearer_grpc.Verifier.verify`` with the cache disabled (``cache_size=0``), so
  every call is a full verification of the same token;
- ``hit``: ``Verifier.lookup`` on a verifier whose cache holds the token (what the
  interceptor does first on every call).

bearer_grpc verifies asymmetric keys only (a shared HMAC secret would let every verifier
mint tokens), so HS256 has the raw and PyJWT
rows only. A last row times the sync interceptor itself: ``intercept_service`` plus the
handler call on a cache hit, minus the bare handler; and the same for a certificate-bound
token (RFC 8705) whose client certificate comes with the call. The stand-in context hands
out a new auth-context dict per call, as grpc does, but not grpc's own work of building
it (about 5 µs measured inside a real mutual-TLS call on a 2-core machine).

Every (algorithm, variant) gets one window per round; rounds alternate direction (ABBA);
ratios (miss / PyJWT) are taken per round, then medianed.
"""

from __future__ import annotations

import base64
import datetime
import functools
import secrets
import time
from collections import namedtuple
from collections.abc import Callable
from typing import Any

import grpc
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

import bearer_grpc
from bearer_grpc.core.binding import thumbprint
from bearer_grpc.testing import TestIssuer
from benchkit.stats import median, ratios, round_order

AUDIENCE = "bench"
ALGORITHMS = ("ES256", "EdDSA", "RS256", "HS256")
VARIANTS = ("raw", "pyjwt", "miss", "hit")
ASYMMETRIC = ("ES256", "EdDSA", "RS256")

Calls = dict[str, dict[str, Callable[[], object]]]


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _raw_verify(alg: str, token: str, key: Any) -> Callable[[], object]:
    signing_input, _, signature_b64 = token.rpartition(".")
    data, signature = signing_input.encode(), _b64(signature_b64)
    if alg == "ES256":
        half = len(signature) // 2
        der = encode_dss_signature(
            int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
        )
        algorithm = ec.ECDSA(hashes.SHA256())
        return lambda: key.verify(der, data, algorithm)
    if alg == "EdDSA":
        return lambda: key.verify(signature, data)
    if alg == "RS256":
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
        return lambda: key.verify(signature, data, pkcs1, sha256)

    def hmac_verify() -> None:
        mac = crypto_hmac.HMAC(key, hashes.SHA256())
        mac.update(data)
        mac.verify(signature)

    return hmac_verify


def _token_and_key(alg: str) -> tuple[str, Any, Any, str, TestIssuer | None]:
    """(token, PyJWT key, raw-verify key, issuer name, TestIssuer or None for HS256)."""
    if alg == "HS256":
        secret = secrets.token_bytes(32)
        template = TestIssuer()
        claims = jwt.decode(
            template.token(subject="bench-client", audience=AUDIENCE, lifetime=86_400),
            options={"verify_signature": False},
        )
        token = jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "at+jwt"})
        return token, secret, secret, template.issuer, None
    issuer = TestIssuer(algorithm=alg)  # type: ignore[arg-type]
    token = issuer.token(subject="bench-client", audience=AUDIENCE, lifetime=86_400)
    key = jwt.PyJWK(issuer.jwks["keys"][0]).key
    return token, key, key, issuer.issuer, issuer


def calls() -> Calls:
    """The callables to time, by algorithm and variant (each checked once here)."""
    table: Calls = {}
    for alg in ALGORITHMS:
        token, key, raw_key, iss, issuer = _token_and_key(alg)

        def decode(token: str = token, key: Any = key, alg: str = alg, iss: str = iss) -> object:
            return jwt.decode(token, key, algorithms=[alg], audience=AUDIENCE, issuer=iss)

        table[alg] = {"raw": _raw_verify(alg, token, raw_key), "pyjwt": decode}
        if issuer is not None:
            uncached = issuer.verifier(audience=AUDIENCE, cache_size=0)
            cached = issuer.verifier(audience=AUDIENCE)
            cached.verify(token)
            if cached.lookup(token) is None:
                raise SystemExit(f"{alg}: a verified token was not cached")
            table[alg]["miss"] = functools.partial(uncached.verify, token)
            table[alg]["hit"] = functools.partial(cached.lookup, token)
    table["interceptor"] = _interceptor_calls()
    for variants in table.values():
        for call in variants.values():
            call()  # warm: the first interceptor call verifies and caches
    return table


HandlerCallDetails = namedtuple("HandlerCallDetails", ("method", "invocation_metadata"))


class _Context:
    """The parts of ``grpc.ServicerContext`` an admitted unary call touches.

    Args:
        client_pem: The client certificate a mutual-TLS call would carry.
    """

    def __init__(self, client_pem: bytes) -> None:
        self._client_pem = client_pem

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"transport_security_type": [b"ssl"], "x509_pem_cert": [self._client_pem]}

    def abort(self, code: Any, details: str) -> Any:
        raise SystemExit(f"the interceptor refused a good token: {code}")

    def abort_with_status(self, status: Any) -> Any:
        raise SystemExit(f"the interceptor refused a good token: {status.code}")

    def set_code(self, code: Any) -> None:
        pass

    def set_details(self, details: str) -> None:
        pass


def _client_certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-client")])
    now = datetime.datetime.now(datetime.UTC)
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name)
    builder = builder.public_key(key.public_key()).serial_number(x509.random_serial_number())
    builder = builder.not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
    return builder.sign(key, hashes.SHA256())


def _metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (
        ("user-agent", f"grpc-python/{grpc.__version__} grpc-c (linux; chttp2)"),
        ("authorization", f"Bearer {token}"),
    )


def _interceptor_calls() -> dict[str, Callable[[], object]]:
    issuer = TestIssuer()
    token = issuer.token(subject="bench-client", audience=AUDIENCE, lifetime=86_400)
    certificate = _client_certificate()
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(jti=claims["jti"] + "-bound")
    claims["cnf"] = {"x5t#S256": thumbprint(certificate.public_bytes(serialization.Encoding.DER))}
    handler: Any = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    details = HandlerCallDetails("/bench.Echo/Echo", _metadata(token))
    bound = HandlerCallDetails("/bench.Echo/Echo", _metadata(issuer.key.sign(claims)))
    context = _Context(certificate.public_bytes(serialization.Encoding.PEM))
    interceptor = bearer_grpc.BearerServerInterceptor(issuer.verifier(audience=AUDIENCE))
    intercept: Any = interceptor.intercept_service

    def continuation(_details: Any) -> Any:
        return handler

    def bare() -> object:
        return continuation(details).unary_unary(b"x", context)

    def hit() -> object:
        return intercept(continuation, details).unary_unary(b"x", context)

    def hit_bound() -> object:
        return intercept(continuation, bound).unary_unary(b"x", context)

    return {"bare": bare, "hit": hit, "hit_bound": hit_bound}


def time_call(fn: Callable[[], object], seconds: float) -> float:
    """CPU µs of this thread per call of ``fn``, in a tight loop for about ``seconds``.

    CPU time, not wall time: on a shared machine the wall clock also counts the time other
    processes held the core, CPU time only ours.
    """
    count, deadline = 0, time.perf_counter() + seconds
    start = time.thread_time()
    while True:
        for _ in range(20):
            fn()
        count += 20
        if time.perf_counter() >= deadline:
            return (time.thread_time() - start) / count * 1e6


def run(settings: dict[str, Any]) -> dict[str, Any]:
    """Time every call in interleaved rounds; return the "micro" section."""
    table = calls()
    cells = [(alg, variant) for alg, variants in table.items() for variant in variants]
    samples: dict[tuple[str, str], list[float]] = {cell: [] for cell in cells}
    for index in range(settings["micro_rounds"]):
        for alg, variant in round_order(cells, index):
            samples[alg, variant].append(time_call(table[alg][variant], settings["micro_seconds"]))
    section: dict[str, Any] = {
        "settings": {k: settings[k] for k in ("micro_rounds", "micro_seconds")},
        "unit": "CPU µs of the measuring thread per call",
        "miss_mode": "cache disabled (cache_size=0), the same token every call",
        "hit_mode": "Verifier.lookup with the token cached",
        "hs256": "raw and PyJWT only: bearer_grpc refuses symmetric keys",
    }
    for alg in ALGORITHMS:
        entry: dict[str, Any] = {}
        for variant in VARIANTS:
            values = samples.get((alg, variant))
            if values:
                entry[f"{variant}_us"] = median(values)
                entry[f"{variant}_rounds_us"] = values
        if "miss_us" in entry:
            entry["miss_over_pyjwt"] = median(ratios(samples[alg, "miss"], samples[alg, "pyjwt"]))
            entry["miss_over_raw"] = median(ratios(samples[alg, "miss"], samples[alg, "raw"]))
        section[alg] = entry
    bare, hit = samples["interceptor", "bare"], samples["interceptor", "hit"]
    hit_bound = samples["interceptor", "hit_bound"]
    section["interceptor"] = {
        "label": "sync intercept_service + handler, cache hit (ES256)",
        "bare_us": median(bare),
        "hit_us": median(hit),
        "added_us": median(h - b for h, b in zip(hit, bare, strict=True)),
        "hit_bound_us": median(hit_bound),
        "bound_added_us": median(h - u for h, u in zip(hit_bound, hit, strict=True)),
    }
    return section
