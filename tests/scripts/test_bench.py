"""Smoke test of scripts/bench: its quick mode runs every section, prints the table and
writes the JSON and the chart. No thresholds: tests check behaviour, never timings.

PostgreSQL parts (IssueToken on PostgreSQL, cross-replica revocation) run when
BEARER_GRPC_TEST_PG_DSN is set, as the bench itself decides.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts" / "bench"
PG_ENV = "BEARER_GRPC_TEST_PG_DSN"
SECTIONS = (
    "micro",
    "echo",
    "service",
    "grants",
    "revocation",
    "memory",
    "issuers",
    "http",
    "cli",
)


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [float(value)]
    return []


def _positive(*values: Any) -> bool:
    return all(isinstance(v, int | float) and v > 0 and math.isfinite(v) for v in values)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any], Path]:
    """One ``scripts/bench --quick`` run shared by the tests below."""
    tmp = tmp_path_factory.mktemp("bench")
    out, png = tmp / "bench.json", tmp / "bench.png"
    done = subprocess.run(
        [str(BENCH), "--quick", "--json", str(out), "--png", str(png)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout, json.loads(out.read_text()), png


def test_every_section_has_positive_numbers(quick_run: tuple[str, dict[str, Any], Path]) -> None:
    _, document, _ = quick_run
    assert set(SECTIONS) <= set(document)
    assert all(math.isfinite(n) for n in _numbers(document))

    micro = document["micro"]
    for alg in ("ES256", "EdDSA", "RS256"):
        m = micro[alg]
        assert _positive(m["raw_us"], m["pyjwt_us"], m["miss_us"], m["hit_us"])
        assert _positive(m["miss_over_pyjwt"])
    assert _positive(micro["HS256"]["raw_us"], micro["HS256"]["pyjwt_us"])
    assert "miss_us" not in micro["HS256"]  # bearer_grpc refuses symmetric keys
    assert _positive(micro["interceptor"]["hit_us"], micro["interceptor"]["hit_bound_us"])

    for flavour in ("sync", "aio"):
        for variant in ("bare", "naive", "bearer", "bearer_fresh"):
            e = document["echo"][flavour][variant]
            assert _positive(e["calls_per_s"], e["p50_ms"], e["p99_ms"], e["ratio_to_bare"])
        for variant in ("bearer", "bearer_fresh"):
            assert _positive(document["echo"][flavour][variant]["ratio_to_naive"])

    service = document["service"]
    expected = ["echo", "verify", "issue_sqlite"]
    if os.environ.get(PG_ENV):
        expected.append("issue_postgresql")
    for name in expected:
        assert _positive(service[name]["calls_per_s"], service[name]["ratio_to_echo"])

    for in_flight in ("in_flight_1", "in_flight_16"):
        grants = document["grants"][in_flight]
        assert _positive(grants["thread"]["wall_us"], grants["loop"]["wall_us"])
        assert _positive(grants["thread"]["cpu_us"], grants["loop"]["cpu_us"])
        assert _positive(grants["thread_over_loop"])

    revocation = document["revocation"]
    parts = ["single", "cross_replica"] if os.environ.get(PG_ENV) else ["single"]
    for name in parts:
        r = revocation[name]
        assert r["timeouts"] == 0
        assert r["revocations"] == len(r["latencies_ms"]) > 0
        assert _positive(r["p50_ms"], r["p99_ms"])
    if not os.environ.get(PG_ENV):
        assert "cross_replica" not in revocation

    memory = document["memory"]
    assert len(memory["sizes"]) == 2
    for size in memory["sizes"]:
        assert _positive(size["bytes_per_token"], size["tokens"])
    assert memory["bound"]["bounded"] is True  # a behaviour, not a timing

    issuers = document["issuers"]
    assert _positive(issuers["hit_us"], issuers["hit_any_of_us"], issuers["miss_us"])
    assert _positive(issuers["pyjwt_us"], issuers["miss_over_pyjwt"], issuers["first_call_ms"])

    http = document["http"]
    for name in ("grpc_issue", "http_token", "jwks", "bare_jwks"):
        assert _positive(http[name]["calls_per_s"], http[name]["server_cpu_us"])
    assert _positive(http["http_over_grpc"]["median"], http["jwks_over_bare"]["median"])
    if http["oidc_provider_skipped"] is None:  # node and oidc-provider present
        assert _positive(http["http_over_oidc_provider"]["median"])

    cli = document["cli"]
    for name in ("floor", "version", "help", "verify"):
        assert len(cli[name]["samples_ms"]) == cli["runs"] > 0
        assert _positive(cli[name]["min_ms"], cli[name]["median_ms"])


def test_table_and_chart(quick_run: tuple[str, dict[str, Any], Path]) -> None:
    stdout, document, png = quick_run
    assert "| section | measurement | result | target | met |" in stdout
    for section in SECTIONS:
        assert f"| {section} |" in stdout
    assert {row["section"] for row in document["table"]} == set(SECTIONS)
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    ("alias", "sections"),
    [("bench-interceptor", "micro,echo"), ("bench-tokens", "micro,service")],
)
def test_aliases_call_bench(alias: str, sections: str) -> None:
    path = ROOT / "scripts" / alias
    assert os.access(path, os.X_OK)
    assert f'/bench" --only {sections} "$@"' in path.read_text()


def test_bench_sources_the_venv() -> None:
    assert os.access(BENCH, os.X_OK)
    assert "source scripts/_venv.sh" in BENCH.read_text()
