"""A fresh PostgreSQL schema per use, on the server ``BEARER_GRPC_TEST_PG_DSN`` names."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
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
