"""The committed examples/shop/ matches what examples/gen-protos produces from
examples/protos/, and the proto passes ``buf lint`` (STANDARD)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import EXAMPLES, REPO, load_example

GEN_SCRIPT = EXAMPLES / "gen-protos"
GENERATED = "shop"  # the directory under examples/ that examples/gen-protos owns entirely
BUF = REPO / "node_modules" / ".bin" / "buf"


def _files(base: Path) -> set[str]:
    return {
        path.relative_to(base).as_posix()
        for path in (base / GENERATED).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen-protos")
    result = subprocess.run(
        ["bash", str(GEN_SCRIPT), "--out", str(out)],
        cwd=REPO,
        env={**os.environ, "PYTHON": sys.executable},  # the pinned generator versions
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"examples/gen-protos failed:\n{result.stdout}{result.stderr}"
    return out


def test_generated_code_is_up_to_date(regenerated: Path) -> None:
    expected, committed = _files(regenerated), _files(EXAMPLES)
    assert {"shop/v1/orders_pb2.py", "shop/v1/orders_pb2_grpc.pyi"} <= expected
    problems = [f"missing: {name}" for name in sorted(expected - committed)]
    problems += [f"not generated (stale?): {name}" for name in sorted(committed - expected)]
    problems += [
        f"differs: {name}"
        for name in sorted(expected & committed)
        if (regenerated / name).read_bytes() != (EXAMPLES / name).read_bytes()
    ]
    assert not problems, (
        "examples/shop/ is out of date with examples/protos/ -- run examples/gen-protos and "
        "commit the result:\n  " + "\n  ".join(problems)
    )


def test_service_has_one_method_of_each_kind() -> None:
    pb = load_example("server").pb
    service = pb.DESCRIPTOR.services_by_name["OrdersService"]
    kinds = {
        method.name: (method.client_streaming, method.server_streaming)
        for method in service.methods
    }
    assert kinds == {
        "GetOrder": (False, False),
        "ListOrders": (False, True),
        "UploadOrders": (True, False),
        "Chat": (True, True),
    }


@pytest.mark.process
@pytest.mark.skipif(not BUF.exists(), reason="buf is not installed (npm ci installs it)")
def test_proto_passes_buf_lint() -> None:
    result = subprocess.run(
        [str(BUF), "lint", "examples/protos"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.process
@pytest.mark.skipif(not BUF.exists(), reason="buf is not installed (npm ci installs it)")
def test_proto_is_buf_formatted() -> None:
    result = subprocess.run(
        [str(BUF), "format", "-d", "--exit-code", "examples/protos"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
