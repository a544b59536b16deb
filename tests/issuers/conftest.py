"""Fixtures of the issuer tests: oidc-provider (one per module, restartable) and the
local HTTP server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.issuers._support import LocalServer, OidcProvider, running_provider


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    """oidc-provider on loopback (skipped where node or its package is missing)."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    with running_provider() as running:
        yield running


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A local HTTP server publishing what the test puts in ``routes``."""
    with LocalServer() as running:
        yield running
