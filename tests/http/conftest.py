"""One TokenService with its HTTP face per module (tests that change state make their own)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.harness import Http, http_service
from tests.http._support import Captured


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    """The module's TokenService with its HTTP face."""
    with http_service(tmp_path_factory.mktemp("http") / "data") as running:
        yield running


@pytest.fixture
def captured() -> Iterator[Captured]:
    """Every log line bearer_grpc writes during the test, at DEBUG and above."""
    handler = Captured()
    root = logging.getLogger("bearer_grpc")
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
