"""The committed generated code matches what scripts/gen-protos produces from protos/.

bearer_grpc/v1/*_pb2*.py{,i} and the packaged copy of the .proto files are build artifacts that
are committed so installs need no code generator. This test regenerates them into a temporary
directory and fails on any byte difference, so a .proto edit without regeneration (or a
hand-edit of generated code) cannot slip through.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GEN_SCRIPT = ROOT / "scripts" / "gen-protos"
PROTO_DIR = ROOT / "protos" / "bearer_grpc" / "v1"
# Directories (relative to the output root) that scripts/gen-protos owns entirely.
GENERATED_DIRS = ("bearer_grpc/v1", "bearer_grpc/protos")


def _files(base: Path) -> set[str]:
    found: set[str] = set()
    for sub in GENERATED_DIRS:
        top = base / sub
        if not top.is_dir():
            continue
        for path in top.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                found.add(path.relative_to(base).as_posix())
    return found


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen-protos")
    # Generate with the interpreter running the tests (it has the pinned generator versions).
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(GEN_SCRIPT), "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (
        f"scripts/gen-protos failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
    )
    return out


def test_generated_code_is_up_to_date(regenerated: Path) -> None:
    expected = _files(regenerated)
    committed = _files(ROOT)
    assert expected, "scripts/gen-protos produced no files"

    problems: list[str] = []
    for name in sorted(expected - committed):
        problems.append(f"missing: {name}")
    for name in sorted(committed - expected):
        problems.append(f"not produced by the generator (stale?): {name}")
    for name in sorted(expected & committed):
        if (regenerated / name).read_bytes() != (ROOT / name).read_bytes():
            problems.append(f"differs: {name}")

    assert not problems, (
        "generated code is out of date with protos/ -- run scripts/gen-protos and commit "
        "the result:\n  " + "\n  ".join(problems)
    )


def test_every_proto_is_generated(regenerated: Path) -> None:
    for proto in sorted(PROTO_DIR.glob("*.proto")):
        stem = proto.stem
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi"):
            assert (regenerated / "bearer_grpc" / "v1" / f"{stem}{suffix}").is_file(), (
                f"{proto.name}: no {stem}{suffix}"
            )
        packaged = regenerated / "bearer_grpc" / "protos" / "bearer_grpc" / "v1" / proto.name
        assert packaged.is_file(), f"{proto.name}: not copied to bearer_grpc/protos/"


def test_generated_grpc_module_imports() -> None:
    module = importlib.import_module("bearer_grpc.v1.token_service_pb2_grpc")
    assert hasattr(module, "TokenServiceStub")
    assert hasattr(module, "TokenServiceServicer")
    assert hasattr(module, "add_TokenServiceServicer_to_server")

    pb2 = importlib.import_module("bearer_grpc.v1.token_service_pb2")
    service = pb2.DESCRIPTOR.services_by_name["TokenService"]
    assert service.full_name == "bearer_grpc.v1.TokenService"
    assert {m.name for m in service.methods} >= {
        "IssueToken",
        "VerifyToken",
        "RevokeToken",
        "GetJwks",
        "WatchRevocations",
    }
