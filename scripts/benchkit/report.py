"""The summary table: one row per figure, with the target beside it where there is one.

Targets (issue 5) are checked and marked, never enforced: the bench prints, it does not
fail (and ``--quick`` figures are too short to judge).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchkit.cli_startup import LABELS, TARGETS_MS


@dataclass
class Row:
    """One line of the table."""

    section: str
    measurement: str
    result: str
    target: str = ""
    met: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row for the JSON document."""
        return self.__dict__.copy()


def _check(value: float, ok: Callable[[float], bool]) -> bool | None:
    return None if value is None or math.isnan(value) else ok(value)


def _micro(section: dict[str, Any]) -> list[Row]:
    rows = []
    for alg in ("ES256", "EdDSA", "RS256", "HS256"):
        m = section[alg]
        rows.append(
            Row(
                "micro",
                f"{alg}: raw verify / PyJWT decode",
                f"{m['raw_us']:,.1f} / {m['pyjwt_us']:,.1f} µs",
            )
        )
        if "miss_us" not in m:
            rows.append(Row("micro", f"{alg}: bearer_grpc", "n/a: symmetric keys refused"))
            continue
        ratio = m["miss_over_pyjwt"]
        rows.append(
            Row(
                "micro",
                f"{alg}: bearer_grpc miss (cache off) / PyJWT",
                f"{m['miss_us']:,.1f} µs = {ratio:.2f}x",
                "<= 1.15x",
                _check(ratio, lambda r: r <= 1.15),
            )
        )
        rows.append(
            Row(
                "micro",
                f"{alg}: bearer_grpc hit (lookup)",
                f"{m['hit_us']:.2f} µs",
                "< 5 µs",
                _check(m["hit_us"], lambda v: v < 5),
            )
        )
    i = section["interceptor"]
    rows.append(Row("micro", "sync interceptor on a hit, added", f"{i['added_us']:.2f} µs"))
    rows.append(
        Row(
            "micro",
            "certificate-bound token on a hit, added over an unbound one",
            f"{i['bound_added_us']:.2f} µs",
        )
    )
    return rows


def _echo(section: dict[str, Any]) -> list[Row]:
    rows = []
    for flavour in ("sync", "aio"):
        variants = section[flavour]
        for name, entry in variants.items():
            text = (
                f"{entry['calls_per_s']:,.0f}/s, p50 {entry['p50_ms']:.1f} / "
                f"p99 {entry['p99_ms']:.1f} ms"
            )
            if name != "bare":
                text += f", {entry['ratio_to_bare']:.2f}x bare"
            target, met = "", None
            if name.startswith("bearer"):
                text += f", {entry['ratio_to_naive']:.2f}x naive"
            if name == "bearer":
                target = ">= 0.90x bare, >= 2x naive"
                met = _check(entry["ratio_to_bare"], lambda r: r >= 0.90)
                if met is not None:
                    met = met and entry["ratio_to_naive"] >= 2.0
            rows.append(Row("echo", f"{flavour}: {entry['label']}", text, target, met))
    foreign = max(
        entry["foreign_cores_max"]
        for flavour in ("sync", "aio")
        for entry in section[flavour].values()
    )
    rows.append(Row("echo", "noise: other processes' CPU in a window, max", f"{foreign:.2f} cores"))
    return rows


def _service(section: dict[str, Any]) -> list[Row]:
    rows = []
    for name in ("echo", "verify", "issue_sqlite", "issue_postgresql"):
        if name not in section:
            continue
        entry = section[name]
        text = f"{entry['calls_per_s']:,.0f}/s, p99 {entry['p99_ms']:.1f} ms"
        target, met = "", None
        if name != "echo":
            text += f", {entry['ratio_to_echo']:.2f}x echo"
        if "server_main_cpu_us" in entry:  # runs before it was measured lack it
            text += (
                f"; server CPU {entry['server_cpu_us']:,.0f} µs/call, "
                f"event loop {entry['server_main_cpu_us']:,.0f}"
            )
        if name == "verify":
            target = ">= 0.80x bare echo"
            met = _check(entry["ratio_to_echo"], lambda r: r >= 0.80)
        rows.append(Row("service", entry["label"], text, target, met))
    if not section.get("postgresql"):
        rows.append(Row("service", "IssueToken, PostgreSQL", "skipped: no --pg-dsn"))
    return rows


def _revocation(section: dict[str, Any]) -> list[Row]:
    rows = []
    labels = {
        "single": "revoke -> verifier refuses (same replica)",
        "cross_replica": "revoke on A -> verifier on B refuses (PostgreSQL)",
    }
    for name, label in labels.items():
        if name not in section:
            rows.append(Row("revocation", label, "skipped: no --pg-dsn"))
            continue
        r = section[name]
        text = (
            f"p50 {r['p50_ms']:.1f} / p99 {r['p99_ms']:.1f} ms over {r['revocations']} "
            f"(from the request: {r['from_send_p50_ms']:.1f} / {r['from_send_p99_ms']:.1f})"
        )
        if r["timeouts"]:
            text += f", {r['timeouts']} timed out"
        met = _check(r["p99_ms"], lambda v: v < 100) if not r["timeouts"] else False
        rows.append(Row("revocation", label, text, "p99 < 100 ms", met))
    return rows


def _memory(section: dict[str, Any]) -> list[Row]:
    rows = []
    for size in section["sizes"]:
        rows.append(
            Row(
                "memory",
                f"cache, {size['tokens']:,} tokens",
                f"{size['bytes_per_token']:,.0f} B/token ({size['token_length']} B tokens)",
                "< 1 KiB/token",
                _check(size["bytes_per_token"], lambda v: v < 1024),
            )
        )
    b = section["bound"]
    rows.append(
        Row(
            "memory",
            f"cache_size={b['max_size']:,}, {b['filled']:,} verified",
            f"{b['size_after_2x_max']:,} entries kept",
            "= max size",
            b["bounded"],
        )
    )
    return rows


def _grants(section: dict[str, Any]) -> list[Row]:
    rows = []
    for key, entry in section.items():
        if not key.startswith("in_flight_"):
            continue
        thread, loop = entry["thread"], entry["loop"]
        rows.append(
            Row(
                "grants",
                f"client credentials in process, {key.removeprefix('in_flight_')} in flight: "
                "issue in a worker thread / issue_async",
                f"{thread['wall_us']:,.0f} / {loop['wall_us']:,.0f} µs per token = "
                f"{entry['thread_over_loop']:.2f}x (CPU {thread['cpu_us']:,.0f} / "
                f"{loop['cpu_us']:,.0f} µs)",
            )
        )
    return rows


def _issuers(section: dict[str, Any]) -> list[Row]:
    ratio = section["miss_over_pyjwt"]
    return [
        Row(
            "issuers",
            "another issuer's token (Keycloak-shaped ES256): hit (lookup)",
            f"{section['hit_us']:.2f} µs; via any_of {section['hit_any_of_us']:.2f} µs",
            "< 5 µs",
            _check(max(section["hit_us"], section["hit_any_of_us"]), lambda v: v < 5),
        ),
        Row(
            "issuers",
            "another issuer's token: miss (cache off) / PyJWT decode",
            f"{section['miss_us']:,.1f} / {section['pyjwt_us']:,.1f} µs = {ratio:.2f}x",
            "<= 1.15x",
            _check(ratio, lambda r: r <= 1.15),
        ),
        Row(
            "issuers",
            "from_issuer(...) to its first verified call (loopback discovery + JWKS)",
            f"{section['first_call_ms']:.1f} ms median, p90 {section['first_call_p90_ms']:.1f} ms"
            f" over {section['first_call_samples']}",
        ),
    ]


def _http(section: dict[str, Any]) -> list[Row]:
    rows = []
    for name in ("grpc_issue", "http_token", "oidc_provider", "jwks", "bare_jwks"):
        if name in section:
            entry = section[name]
            text = (
                f"{entry['calls_per_s']:,.0f}/s, p99 {entry['p99_ms']:.1f} ms, "
                f"server {entry['server_cpu_us']:,.0f} µs/request"
            )
            rows.append(Row("http", entry["label"], text))
    targets = {
        "http_over_grpc": ("HTTP /token / gRPC IssueToken", 0.9),
        "http_over_oidc_provider": ("HTTP /token / oidc-provider /token", 0.5),
        "jwks_over_bare": ("GET /jwks / bare aiohttp endpoint", 0.8),
    }
    for key, (label, target) in targets.items():
        if key not in section:
            rows.append(Row("http", label, f"skipped: {section.get('oidc_provider_skipped')}"))
            continue
        ratio = section[key]["median"]
        rows.append(
            Row(
                "http",
                label,
                f"{ratio:.2f}x",
                f">= {target}x",
                _check(ratio, lambda r, t=target: r >= t),
            )
        )
    return rows


def _mesh(section: dict[str, Any]) -> list[Row]:
    rows = []
    for name in ("bare", "jwt_authn", "authz"):
        entry = section["envoy"][name]
        text = (
            f"{entry['calls_per_s']:,.0f}/s, p50 {entry['p50_ms']:.2f} / "
            f"p99 {entry['p99_ms']:.2f} ms"
        )
        if name != "bare":
            text += (
                f", {entry['ratio_to_bare']:.2f}x bare, adds p50 {entry['added_p50_ms']:+.2f} / "
                f"p99 {entry['added_p99_ms']:+.2f} ms"
            )
        if entry["refused"]:
            text += f"; {entry['refused']} refused (check timed out: fail closed)"
        label = f"{entry['label']}, {entry['concurrency']} in flight"
        rows.append(Row("mesh", label, text))
    c = section["check_vs_echo"]
    rows.append(
        Row(
            "mesh",
            "Check (cache hit) / bare echo of the same CheckRequest, one aio server",
            f"{c['check_calls_per_s']:,.0f} / {c['echo_message_calls_per_s']:,.0f} calls/s = "
            f"{c['ratio']:.2f}x ({c['ratio_to_bytes_echo']:.2f}x a bytes echo, "
            f"{c['echo_calls_per_s']:,.0f}/s); server CPU per call "
            f"{c['server_cpu_us']['check']:.0f} / {c['server_cpu_us']['echo_message']:.0f} µs "
            f"= {c['cpu_ratio']:.2f}x",
            ">= 0.80x",
            _check(c["ratio"], lambda r: r >= 0.80),
        )
    )
    p = section["in_process"]
    rows.append(
        Row(
            "mesh",
            "one Check in process (parsed request, cache hit + policy, response built)",
            f"{p['check_us']:.1f} µs (p90 {p['check_us_p90']:.1f})",
            "< 20 µs",
            _check(p["check_us"], lambda v: v < 20),
        )
    )
    return rows


def _cli(section: dict[str, Any]) -> list[Row]:
    rows = []
    floor = section["floor"]["median_ms"]
    for name in LABELS:
        entry = section[name]
        text = f"min {entry['min_ms']:.0f} / median {entry['median_ms']:.0f} ms"
        if name != "floor":
            text += f" ({entry['median_ms'] - floor:+.0f} over the floor)"
        target, met = "", None
        if name in TARGETS_MS:
            limit = TARGETS_MS[name]
            target = f"median < {limit:.0f} ms"
            met = _check(entry["median_ms"], lambda v, t=limit: v < t)
        rows.append(Row("cli", f"{entry['label']}, {section['runs']} runs", text, target, met))
    return rows


BUILDERS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "micro": _micro,
    "echo": _echo,
    "service": _service,
    "grants": _grants,
    "revocation": _revocation,
    "memory": _memory,
    "issuers": _issuers,
    "http": _http,
    "cli": _cli,
    "mesh": _mesh,
}


def rows(document: dict[str, Any]) -> list[Row]:
    """Every row of the sections present in ``document``."""
    return [
        row for name, build in BUILDERS.items() if name in document for row in build(document[name])
    ]


def markdown(table: list[Row]) -> str:
    """The rows as a Markdown table."""
    marks = {True: "yes", False: "**no**", None: ""}
    lines = ["| section | measurement | result | target | met |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.section} | {r.measurement} | {r.result} | {r.target} | {marks[r.met]} |"
        for r in table
    ]
    return "\n".join(lines)
