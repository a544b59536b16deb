"""The package layout keeps its rules: one room per role, twins side by side, small modules.

- The client side never imports the verifier side.
- An asyncio module imports no private name from its sync twin, and twins define the
  same public names.
- Only ``bearer_grpc.aio`` itself, the shipped test kit and users import ``bearer_grpc.aio``.
- Every role package's ``__init__`` is its overview (a docstring, no code).
- No module is over 400 lines, apart from generated code.
- Nothing in the code cites documents outside the repository.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import bearer_grpc

PACKAGE = Path(bearer_grpc.__file__).resolve().parent
ROOT = PACKAGE.parent
ROLES = ("_server", "_client", "_verifier")
MAX_LINES = 400
SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "v1" not in p.relative_to(PACKAGE).parts)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every ``import``/``from … import`` in the file."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
    return found


def _defined_public_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
    return {name for name in names if not name.startswith("_")}


def _twins() -> list[tuple[Path, Path]]:
    pairs = []
    for role in ROLES:
        for aio in sorted((PACKAGE / role).glob("*_aio.py")):
            pairs.append((aio.with_name(aio.name.removesuffix("_aio.py") + ".py"), aio))
    return pairs


def test_every_role_has_its_package_and_twins() -> None:
    for role in ROLES:
        assert (PACKAGE / role / "__init__.py").is_file(), role
    assert {(sync.parent.name, sync.name) for sync, _ in _twins()} >= {
        ("_server", "interceptor.py"),
        ("_client", "interceptor.py"),
        ("_client", "sources.py"),
        ("_verifier", "verifier.py"),
        ("_verifier", "follower.py"),
        ("_verifier", "protocol.py"),
    }
    for sync, _ in _twins():
        assert sync.is_file(), f"{sync} has an asyncio twin but no sync one"


@pytest.mark.parametrize("path", sorted((PACKAGE / "_client").glob("*.py")), ids=lambda p: p.name)
def test_the_client_side_does_not_import_the_verifier_side(path: Path) -> None:
    modules = [module for module, _ in _imports(path)]
    assert [m for m in modules if m.startswith("bearer_grpc._verifier")] == []


@pytest.mark.parametrize("pair", _twins(), ids=lambda pair: pair[1].name)
def test_an_aio_module_imports_no_private_name_of_its_sync_twin(pair: tuple[Path, Path]) -> None:
    sync, aio = pair
    twin = _module_name(sync)
    private = [
        name
        for module, names in _imports(aio)
        if module == twin
        for name in names
        if name.startswith("_")
    ]
    assert private == []


@pytest.mark.parametrize("pair", _twins(), ids=lambda pair: pair[1].name)
def test_twins_name_their_parts_alike(pair: tuple[Path, Path]) -> None:
    sync, aio = pair
    only_aio = _defined_public_names(aio) - _defined_public_names(sync)
    assert only_aio == set(), f"{aio.name} defines what {sync.name} names otherwise"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_aio_surface_and_the_kit_import_bearer_grpc_aio(path: Path) -> None:
    relative = path.relative_to(PACKAGE).parts
    if relative[0] in {"aio", "testing", "testing.py"}:
        return
    modules = [module for module, _ in _imports(path)]
    assert [m for m in modules if m == "bearer_grpc.aio" or m.startswith("bearer_grpc.aio.")] == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_is_imported_across_modules(path: Path) -> None:
    crossing = [
        f"{module}.{name}"
        for module, names in _imports(path)
        if module.startswith("bearer_grpc")
        for name in names
        if name.startswith("_") and not name.startswith("__") and not _is_module(module, name)
    ]
    assert crossing == []


def _is_module(package: str, name: str) -> bool:
    """Whether ``from package import name`` imports a submodule (private modules are
    their package's business), not a private name defined in a module."""
    folder = ROOT.joinpath(*package.split("."))
    return (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file()


@pytest.mark.parametrize("role", ROLES)
def test_a_role_package_init_is_its_overview(role: str) -> None:
    tree = ast.parse((PACKAGE / role / "__init__.py").read_text())
    docstring = ast.get_docstring(tree)
    assert docstring is not None and len(docstring.splitlines()) >= 5
    assert len(tree.body) == 1, "the overview holds no code"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES


OUTSIDE_REFERENCE = re.compile(r"\b(?:DESIGN|STYLE)\s*(?:§|section\s*)?\d")


@pytest.mark.parametrize(
    "path",
    sorted(
        [*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "scripts").rglob("*")]
    ),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_nothing_cites_documents_outside_the_repository(path: Path) -> None:
    if not path.is_file() or path.suffix in {".png", ".json", ".pyc"}:
        return
    hits = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE_REFERENCE.search(line)
    ]
    assert hits == []
