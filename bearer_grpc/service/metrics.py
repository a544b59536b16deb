"""Prometheus metrics of the TokenService, on a registry of their own.

Every metric is named ``bearer_grpc_*`` and labelled only from small fixed sets (grant
type, outcome, result, reason, operation, and the ``interface`` a call came through:
``grpc`` or ``http``): never a subject, client, token or ``jti``, so a scrape reveals
nothing about who called and its series count stays bounded.

Each :class:`ServiceMetrics` has its own ``CollectorRegistry`` (never the global one), so
several servers, and tests, can live in one process. :meth:`ServiceMetrics.start_http`
serves ``/metrics`` on a daemon thread. Recording costs a counter increment (about a
microsecond) or a histogram observation on the per-call path; the label children are
resolved once, here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bearer_grpc.core.cache import TokenCache
from bearer_grpc.core.errors import (
    AuthError,
    Forbidden,
    InsufficientScope,
    InvalidGrant,
    InvalidRequest,
    Overloaded,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenRevoked,
    Unavailable,
)
from bearer_grpc.service.process import MetricsEndpoint
from bearer_grpc.service.process import parse_listen as parse_listen  # its old home

INTERFACES: Final = ("grpc", "http")
"""``interface`` label values: the gRPC TokenService, or its HTTP face (OAuth 2.0)."""
HTTP_ENDPOINTS: Final = ("token", "revoke", "introspect", "jwks", "discovery", "other")
"""``endpoint`` label values of ``bearer_grpc_http_requests_total``."""
GRANTS: Final = ("client_credentials", "password", "refresh_token", "none")
"""``grant`` label values of ``bearer_grpc_tokens_issued_total`` ("none": no grant sent)."""
ISSUE_OUTCOMES: Final = (
    "issued",
    "invalid_request",
    "invalid_grant",
    "forbidden",
    "overloaded",
    "unavailable",
    "error",
)
"""``outcome`` label values of ``bearer_grpc_tokens_issued_total``."""
VERIFY_REASONS: Final = (
    "malformed",
    "invalid",
    "expired",
    "revoked",
    "insufficient_scope",
    "other",
)
"""``reason`` label values of inactive verifications (from the error class; "invalid"
covers signature, unknown key, issuer, audience and claim errors alike)."""
STORE_OPERATIONS: Final = ("issue", "revoke", "sync", "housekeeping", "rotate", "listen", "other")
"""``operation`` label values of ``bearer_grpc_store_errors_total``; anything else is
counted as "other"."""
LATENCY_BUCKETS: Final = (
    50e-6,
    100e-6,
    250e-6,
    500e-6,
    1e-3,
    2.5e-3,
    5e-3,
    10e-3,
    25e-3,
    50e-3,
    100e-3,
    250e-3,
    500e-3,
    1.0,
)
"""Seconds: VerifyToken answers from the cache in tens of microseconds, a signature
check takes a few hundred; beyond a second something else is wrong."""
LAG_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Seconds from revocation to delivery (the store keeps whole seconds, see
:meth:`ServiceMetrics.revocation_delivered`)."""

_PREFIX: Final = "bearer_grpc_"
_REASONS: Final[tuple[tuple[type[AuthError], str], ...]] = (
    (TokenMalformed, "malformed"),
    (TokenExpired, "expired"),
    (TokenRevoked, "revoked"),
    (InsufficientScope, "insufficient_scope"),
    (TokenInvalid, "invalid"),
)
_OUTCOMES: Final[tuple[tuple[type[Exception], str], ...]] = (
    (InvalidRequest, "invalid_request"),
    (InvalidGrant, "invalid_grant"),
    (Forbidden, "forbidden"),
    (Overloaded, "overloaded"),
    (Unavailable, "unavailable"),
)


def verify_reason(error: AuthError) -> str:
    """The ``reason`` label of an inactive verification (one of :data:`VERIFY_REASONS`)."""
    for cls, reason in _REASONS:
        if isinstance(error, cls):
            return reason
    return "other"


def issue_outcome(error: BaseException | None) -> str:
    """The ``outcome`` label of an IssueToken call (one of :data:`ISSUE_OUTCOMES`)."""
    if error is None:
        return "issued"
    for cls, outcome in _OUTCOMES:
        if isinstance(error, cls):
            return outcome
    return "error"


class _CacheCollector(Collector):
    """Reads the verify cache's size and hit counts at scrape time (nothing per call)."""

    def __init__(self) -> None:
        self.source: Callable[[], TokenCache] | None = None

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterable[Metric]:
        source = self.source
        if source is None:
            return
        try:
            cache = source()
        except RuntimeError:  # the authority has not started yet
            return
        hits, misses = cache.hits, cache.misses
        lookups = hits + misses
        yield GaugeMetricFamily(
            f"{_PREFIX}verify_cache_entries", "Verified tokens in the cache.", value=len(cache)
        )
        yield GaugeMetricFamily(
            f"{_PREFIX}verify_cache_capacity",
            "Most verified tokens the cache keeps.",
            value=cache.max_size,
        )
        yield CounterMetricFamily(
            f"{_PREFIX}verify_cache_hits", "VerifyToken lookups found in the cache.", value=hits
        )
        yield CounterMetricFamily(
            f"{_PREFIX}verify_cache_misses",
            "VerifyToken lookups not in the cache (verified in full).",
            value=misses,
        )
        yield GaugeMetricFamily(
            f"{_PREFIX}verify_cache_hit_ratio",
            "Hits over lookups since start (0 before the first lookup).",
            value=hits / lookups if lookups else 0.0,
        )


class ServiceMetrics(MetricsEndpoint):
    """The TokenService's metrics and, optionally, the HTTP endpoint serving them.

    Attributes:
        registry: The registry every metric here is registered in (not the global one).
    """

    def __init__(self) -> None:
        super().__init__()
        registry = self.registry
        issued = Counter(
            f"{_PREFIX}tokens_issued",
            "Token requests (IssueToken, POST /token) by grant type, outcome and interface.",
            ("grant", "outcome", "interface"),
            registry=registry,
        )
        self._issued = {
            (g, o, i): issued.labels(g, o, i)
            for g in GRANTS
            for o in ISSUE_OUTCOMES
            for i in INTERFACES
        }
        verifications = Counter(
            f"{_PREFIX}verifications",
            "VerifyToken calls and introspections by result (active, inactive, error), "
            "reason and interface.",
            ("result", "reason", "interface"),
            registry=registry,
        )
        self._verifications: dict[tuple[str, str], Mapping[str, Counter]] = {
            (result, reason): {i: verifications.labels(result, reason, i) for i in INTERFACES}
            for result, reason in (
                ("active", "none"),
                *(("inactive", r) for r in VERIFY_REASONS),
                ("error", "invalid_request"),
                ("error", "other"),
            )
        }
        latency = Histogram(
            f"{_PREFIX}verify_duration_seconds",
            "Time VerifyToken (or an introspection) spends verifying and building its answer.",
            ("interface",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._latency = {i: latency.labels(i) for i in INTERFACES}
        revocations = Counter(
            f"{_PREFIX}revocations_accepted",
            "Revocations that succeeded, by what named the token (token or token_id) and "
            "interface.",
            ("target", "interface"),
            registry=registry,
        )
        self._revocations = {
            (t, i): revocations.labels(t, i) for t in ("token", "token_id") for i in INTERFACES
        }
        http_requests = Counter(
            f"{_PREFIX}http_requests",
            "Requests to the HTTP face by endpoint and status code.",
            ("endpoint", "code"),
            registry=registry,
        )
        self._http_requests = http_requests
        self._lag = Histogram(
            f"{_PREFIX}revocation_lag_seconds",
            "Seconds from a revocation to its delivery on a WatchRevocations stream here "
            "(live deliveries only; whole-second revocation times, so up to 1 s high).",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        store_errors = Counter(
            f"{_PREFIX}store_errors",
            "Store operations that failed because the store could not answer.",
            ("operation",),
            registry=registry,
        )
        self._store_errors = {op: store_errors.labels(op) for op in STORE_OPERATIONS}
        self._watchers = Gauge(
            f"{_PREFIX}watch_streams_open",
            "WatchRevocations streams currently open.",
            registry=registry,
        )
        self._cache = _CacheCollector()
        registry.register(self._cache)

    # -- recording -----------------------------------------------------------------------
    def track_cache(self, source: Callable[[], TokenCache]) -> None:
        """Report the cache ``source()`` returns at each scrape.

        It may raise RuntimeError while there is none yet: nothing is reported then.
        """
        self._cache.source = source

    def issued(self, grant: str, error: BaseException | None, interface: str = "grpc") -> None:
        """Count a token request.

        ``grant`` from :data:`GRANTS`, ``error`` None if issued, ``interface`` from
        :data:`INTERFACES`.
        """
        outcome = issue_outcome(error)
        child = self._issued.get((grant, outcome, interface))
        if child is None:
            child = self._issued["none", outcome, interface]
        child.inc()

    def verification(
        self, error: BaseException | None, seconds: float, interface: str = "grpc"
    ) -> None:
        """Count a VerifyToken call (or an introspection) and observe its duration.

        Args:
            error: None when the token was active; the AuthError that made it inactive;
                any other error when the request itself failed.
            seconds: Time spent in the handler.
            interface: One of :data:`INTERFACES`.
        """
        if error is None:
            key = ("active", "none")
        elif isinstance(error, AuthError):
            key = ("inactive", verify_reason(error))
        elif isinstance(error, InvalidRequest):
            key = ("error", "invalid_request")
        else:
            key = ("error", "other")
        self._verifications[key][interface].inc()
        self._latency[interface].observe(seconds)

    def revocation_accepted(self, target: str, interface: str = "grpc") -> None:
        """Count a successful revocation (``target`` is "token" or "token_id")."""
        self._revocations[target, interface].inc()

    def http_request(self, endpoint: str, status: int) -> None:
        """Count a request to the HTTP face (``endpoint`` from :data:`HTTP_ENDPOINTS`)."""
        self._http_requests.labels(endpoint, str(status)).inc()

    def revocation_delivered(self, lag: float) -> None:
        """Observe the seconds between a revocation's ``revoked_at`` and its delivery.

        The store keeps ``revoked_at`` in whole seconds (rounded down), so each value is
        up to a second higher than the true lag; negative values (clock steps) count as 0.
        """
        self._lag.observe(lag if lag > 0 else 0.0)

    def store_error(self, operation: str) -> None:
        """Count a failed store operation (see :data:`STORE_OPERATIONS`)."""
        self._store_errors.get(operation, self._store_errors["other"]).inc()

    def watch_opened(self) -> None:
        """A WatchRevocations stream started."""
        self._watchers.inc()

    def watch_closed(self) -> None:
        """A WatchRevocations stream ended."""
        self._watchers.dec()
