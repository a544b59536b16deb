"""What differs between the databases stays in that database's dialect module.

``_sqlite.py`` and ``_postgres.py`` alone import their drivers and SQLAlchemy dialects, and
no store module asks an engine which database it runs on: the dialect chosen from the URL
answers instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bearer_grpc.store

STORE_FILES = sorted(Path(bearer_grpc.store.__file__).resolve().parent.glob("*.py"))
DATABASE_MODULES = {
    "_sqlite.py": ("sqlite3", "sqlalchemy.dialects.sqlite"),
    "_postgres.py": ("psycopg", "sqlalchemy.dialects.postgresql"),
}


def imported(tree: ast.AST) -> set[str]:
    """Every module name an ``import`` or ``from ... import`` in ``tree`` may load."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def dialect_questions(tree: ast.AST) -> list[int]:
    """Lines that read ``<something>.dialect.name``."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "name"
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "dialect"
    ]


def within(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def test_both_dialect_modules_exist() -> None:
    assert set(DATABASE_MODULES) <= {path.name for path in STORE_FILES}


@pytest.mark.parametrize("path", STORE_FILES, ids=lambda p: p.name)
def test_database_drivers_are_imported_by_their_dialect_module_only(path: Path) -> None:
    names = imported(ast.parse(path.read_text(), filename=str(path)))
    foreign = [
        name
        for owner, modules in DATABASE_MODULES.items()
        if path.name != owner
        for name in names
        if any(within(name, module) for module in modules)
    ]
    assert foreign == []


@pytest.mark.parametrize("path", STORE_FILES, ids=lambda p: p.name)
def test_no_store_module_asks_which_database_it_runs_on(path: Path) -> None:
    assert dialect_questions(ast.parse(path.read_text(), filename=str(path))) == []


def test_the_checks_see_a_foreign_import_and_a_question() -> None:
    # The checks above can fail: they catch what the old _sql.py did.
    tree = ast.parse(
        "from sqlalchemy.dialects import postgresql\n"
        "if conn.dialect.name == 'postgresql':\n    pass\n"
    )
    assert "sqlalchemy.dialects.postgresql" in imported(tree)
    assert dialect_questions(tree) == [2]
