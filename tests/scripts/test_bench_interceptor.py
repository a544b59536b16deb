"""Smoke test of scripts/bench-interceptor: its quickest mode runs, prints both tables and
writes valid JSON. No thresholds: tests never time (DESIGN 6)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench_interceptor.py"
WRAPPER = ROOT / "scripts" / "bench-interceptor"

VARIANTS = ("bare", "naive", "bearer_hit", "bearer_miss")


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [float(value)]
    return []


def test_quick_mode_prints_tables_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    stdout = done.stdout
    assert "## 1. In process" in stdout
    assert "## 2. End to end" in stdout
    assert "| variant | µs/call median (min-max) |" in stdout
    assert "| server | variant | calls/s median (min-max) | ratio to bare |" in stdout
    for label in ("bare (no interceptor)", "naive: PyJWT", "cache hit", "cache_size=0"):
        assert stdout.count(label) == 3, label  # one row in part 1, two (sync, aio) in part 2

    document = json.loads(out.read_text())
    assert set(document) == {"settings", "environment", "micro", "e2e"}
    assert set(document["micro"]) == set(VARIANTS)
    assert set(document["e2e"]) == {"sync", "aio"}
    for flavour in ("sync", "aio"):
        assert set(document["e2e"][flavour]) == set(VARIANTS)
        for variant in VARIANTS:
            result = document["e2e"][flavour][variant]
            assert result["calls_per_s"] > 0
            assert result["ratio_to_bare"] > 0
            assert len(result["rounds"]) == 1
    for variant in VARIANTS:
        assert document["micro"][variant]["median_us"] > 0
    assert all(math.isfinite(n) for n in _numbers(document))


def test_wrapper_runs_the_script() -> None:
    assert os.access(WRAPPER, os.X_OK)
    text = WRAPPER.read_text()
    assert "source scripts/_venv.sh" in text
    assert "scripts/bench_interceptor.py" in text
