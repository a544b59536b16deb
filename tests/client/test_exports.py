"""The client names are public in both flavours, as ``grpc`` and ``grpc.aio`` do."""

from __future__ import annotations

import pytest

import bearer_grpc
import bearer_grpc.aio

SHARED = ("BearerClientInterceptor", "ClientCredentials", "StaticToken")


@pytest.mark.parametrize("name", SHARED)
def test_both_flavours_export(name: str) -> None:
    assert name in bearer_grpc.__all__
    assert name in bearer_grpc.aio.__all__
    assert getattr(bearer_grpc, name) is not getattr(bearer_grpc.aio, name)


def test_call_credentials_are_sync_only() -> None:
    assert "bearer_call_credentials" in bearer_grpc.__all__
    assert "bearer_call_credentials" in bearer_grpc.aio.__all__
