"""Shared fixtures for the core unit tests: one signing key per algorithm per session."""

from __future__ import annotations

import pytest

from bearer_grpc.core.keys import ALGORITHMS, SigningKey


@pytest.fixture(scope="session")
def signing_keys() -> dict[str, SigningKey]:
    """A fresh key for every supported algorithm (RSA generation is the slow part)."""
    return {alg: SigningKey.generate(alg) for alg in ALGORITHMS}
