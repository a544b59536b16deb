"""The core is pure: it imports no grpc and no database driver, and reads no clock (time
comes in through a ``clock`` parameter), so the same rules serve every adapter."""

from __future__ import annotations

import ast
import json
import pkgutil
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bearer_grpc.core
from bearer_grpc.core.keys import PublicKeySet, SigningKey
from bearer_grpc.core.tokens import TokenVerifier, issue_access_token

CORE_DIR = Path(bearer_grpc.core.__file__).resolve().parent
PACKAGE_DIR = CORE_DIR.parent
CORE_MODULES = sorted(
    f"bearer_grpc.core.{info.name}" for info in pkgutil.walk_packages([str(CORE_DIR)])
)
CORE_FILES = sorted(CORE_DIR.rglob("*.py"))
FORBIDDEN_MODULES = (
    "grpc",
    "grpc_status",
    "google.protobuf",
    "sqlalchemy",
    "psycopg",
    "psycopg2",
    "asyncpg",
    "sqlite3",
)

# Import the core in a fresh interpreter. The parent package is stubbed so that what is
# measured is the core's own import closure, not whatever bearer_grpc/__init__ re-exports.
PROBE = """
import importlib, json, sys, types
package = types.ModuleType("bearer_grpc")
package.__path__ = [sys.argv[1]]
sys.modules["bearer_grpc"] = package
for name in sys.argv[2:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def imported_modules(*modules: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(PACKAGE_DIR), *modules],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def forbidden(loaded: list[str]) -> list[str]:
    return [
        name
        for name in loaded
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN_MODULES)
    ]


def test_core_modules_are_discovered() -> None:
    expected = {"clock", "errors", "header", "keys", "scopes", "secrets", "tokens"}
    assert {f"bearer_grpc.core.{name}" for name in expected} <= set(CORE_MODULES)


@pytest.mark.process
def test_importing_the_core_imports_no_grpc_and_no_database_driver() -> None:
    loaded = imported_modules("bearer_grpc.core", *CORE_MODULES)
    assert set(CORE_MODULES) <= set(loaded)
    assert forbidden(loaded) == []


@pytest.mark.process
def test_the_import_probe_detects_a_forbidden_module() -> None:
    # The check above can fail: the same probe sees a module a core import would pull in.
    assert "sqlite3" in forbidden(imported_modules("bearer_grpc.core.errors", "sqlite3"))


# time.time(), datetime.now(), ... written as calls anywhere in the source text.
CLOCK_CALL = re.compile(
    r"\b(?:time\.(?:time|time_ns|localtime|gmtime)|datetime\.(?:now|utcnow|today)"
    r"|date\.today)\s*\("
)


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_source_has_no_clock_calls(path: Path) -> None:
    hits = [
        f"{path.name}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if CLOCK_CALL.search(line)
    ]
    assert hits == []


def _clock_references(tree: ast.AST) -> list[ast.AST]:
    found: list[ast.AST] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr)
            in {
                ("time", "time"),
                ("time", "time_ns"),
                ("datetime", "now"),
                ("datetime", "utcnow"),
                ("date", "today"),
            }
        ) or (isinstance(node, ast.ImportFrom) and node.module in {"time", "datetime"}):
            found.append(node)
    return found


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_only_clock_py_defines_the_system_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    references = _clock_references(tree)
    if path.name != "clock.py":
        assert references == [], f"{path.name} reads the system clock"
        return
    # clock.py: exactly one reference, the documented `system_clock = time.time`.
    definitions = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign | ast.Assign)
        and any(
            isinstance(target, ast.Name) and target.id == "system_clock"
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
    ]
    assert len(definitions) == 1
    assert references == [definitions[0].value]


def test_issue_and_verify_never_read_the_system_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    key = SigningKey.generate("EdDSA")
    verifier = TokenVerifier(
        PublicKeySet({"keys": [dict(key.jwk)]}), issuer="iss", clock=lambda: 1_000_000.0
    )

    def no_clock() -> float:
        raise AssertionError("the core read the system clock")

    with monkeypatch.context() as patch:
        patch.setattr(time, "time", no_clock)
        patch.setattr(time, "time_ns", no_clock)
        issued = issue_access_token(
            key,
            issuer="iss",
            subject="svc",
            audience="aud",
            scopes=["a"],
            client_id="svc",
            lifetime=60,
            now=1_000_000,
        )
        principal = verifier.verify(issued.token, audience="aud", required_scopes=["a"])
    assert principal.issued_at == 1_000_000
