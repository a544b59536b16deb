"""Smoke test of scripts/soak: its quick mode passes and prints one summary line a section.

No thresholds on speed: a test never fails for being slow on a busy machine. The bounds
the soak checks itself (zero unexpected errors, cache size within its maximum, RSS growth,
every revocation seen by every stream and verifier within a second at worst) decide its
exit status.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "scripts" / "soak"

SUMMARY = re.compile(
    r"^soak: PASS duration=[\d.]+s clients=64 calls=(?P<calls>\d+) "
    r"\(unary_unary=(?P<uu>\d+) unary_stream=(?P<us>\d+) stream_unary=(?P<su>\d+) "
    r"stream_stream=(?P<ss>\d+)\) .*errors=0 revocations=(?P<revocations>\d+) "
    r"refused_revoked=\d+ .*p50=[\d.]+ms p99=[\d.]+ms peak_rss=[\d.]+MiB .*"
    r"cache=sync=(?P<sync>\d+)/100 aio=(?P<aio>\d+)/100$"
)
REVOCATIONS = re.compile(
    r"^soak-revocations: PASS streams=250 verifiers=4 revocations=(?P<revocations>\d+) "
    r"observations=(?P<observations>\d+) missing=0 lag_max=(?P<max>[\d.]+)ms "
    r"lag_p50=[\d.]+ms lag_p99=[\d.]+ms verifier_lag_max=[\d.]+ms$"
)


def test_quick_soak_passes_and_prints_one_summary_line() -> None:
    done = subprocess.run(
        [str(WRAPPER), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("soak:")]
    assert len(lines) == 1, done.stdout
    match = SUMMARY.match(lines[0])
    assert match, lines[0]
    assert all(int(match[kind]) > 0 for kind in ("uu", "us", "su", "ss"))
    assert int(match["revocations"]) > 0
    assert 0 < int(match["sync"]) <= 100 and 0 < int(match["aio"]) <= 100
    [revocations] = [line for line in done.stdout.splitlines() if line.startswith("soak-rev")]
    measured = REVOCATIONS.match(revocations)
    assert measured, revocations
    revoked = int(measured["revocations"])
    assert revoked > 0 and int(measured["observations"]) == revoked * (250 + 4)
