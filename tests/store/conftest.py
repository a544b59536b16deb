"""Fixtures that run the store suite against every backend.

SQLite always runs, in a temporary directory. PostgreSQL runs when ``BEARER_GRPC_TEST_PG_DSN``
names a server (e.g. ``postgresql://postgres@127.0.0.1:5432/test``); each test then gets a
fresh schema, selected through the URL's ``options=-csearch_path=...`` and dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from bearer_grpc.store import TestableStore, open_store
from tests.harness import BACKENDS, backend_url, pg_dsn, pg_schema_url

OpenStore = Callable[..., TestableStore]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on each backend."""
    with backend_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of an empty PostgreSQL schema (PostgreSQL-only tests)."""
    with pg_schema_url(pg_dsn()) as url:
        yield url


@pytest.fixture
def open_(store_url: str) -> Iterator[OpenStore]:
    """Open stores on ``store_url`` (thread-safe); all are closed after the test."""
    opened: list[TestableStore] = []

    def open_one(**kwargs: float) -> TestableStore:
        store = open_store(store_url, **kwargs)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(open_: OpenStore) -> TestableStore:
    """An open store on an empty database."""
    return open_()


@pytest.fixture
def raw_engine(store_url: str) -> Iterator[Engine]:
    """A plain SQLAlchemy engine on the store's database, to look behind the interface."""
    url = make_url(store_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url)
    yield engine
    engine.dispose()
