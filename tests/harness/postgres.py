"""A fresh PostgreSQL schema per use, on the server ``BEARER_GRPC_TEST_PG_DSN`` names; an
empty store on each backend."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import pytest

PG_DSN_ENV: Final = "BEARER_GRPC_TEST_PG_DSN"
"""Names the PostgreSQL server of the ``postgres`` tests, e.g.
``postgresql://postgres@127.0.0.1:5432/test``; without it they are skipped."""


def pg_dsn() -> str:
    """The PostgreSQL DSN from the environment, or skip the test."""
    dsn = os.environ.get(PG_DSN_ENV)
    if not dsn:
        pytest.skip(f"{PG_DSN_ENV} not set")
    return dsn


@contextmanager
def pg_schema_url(dsn: str) -> Iterator[str]:
    """A store URL on a fresh PostgreSQL schema (selected by the URL's
    ``options=-csearch_path=...``), dropped on exit."""
    import psycopg
    from psycopg import sql

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        separator = "&" if "?" in dsn else "?"
        yield f"{dsn}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


BACKENDS: Final = ("sqlite", pytest.param("postgresql", marks=pytest.mark.postgres))
"""Parameters of a fixture run on every store backend (PostgreSQL ones marked
``postgres``): pass them to ``pytest.fixture(params=...)`` and the fixture's
``request.param`` to :func:`backend_url`."""


@contextmanager
def backend_url(backend: str, directory: Path) -> Iterator[str]:
    """The URL of an empty store on ``backend``: SQLite in ``directory``, or a fresh
    PostgreSQL schema (:func:`pg_schema_url`; skipped without :data:`PG_DSN_ENV`)."""
    if backend == "sqlite":
        from bearer_grpc.store import sqlite_url

        yield sqlite_url(directory / "data")
    else:
        with pg_schema_url(pg_dsn()) as url:
            yield url
