"""The public surface: sorted, complete, and the same names in bearer_grpc and bearer_grpc.aio."""

from __future__ import annotations

import pytest

import bearer_grpc
import bearer_grpc.aio

# The Python API promised under the same names in bearer_grpc and bearer_grpc.aio.
SHARED = {
    "BearerClientInterceptor",
    "BearerServerInterceptor",
    "ClientCredentials",
    "Policy",
    "StaticToken",
    "Verifier",
    "bearer_call_credentials",
    "current_principal",
}


def test_all_is_sorted_and_every_name_exists() -> None:
    for module in (bearer_grpc, bearer_grpc.aio):
        assert module.__all__ == sorted(module.__all__), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_design_names_exist_in_both_flavours() -> None:
    assert set(bearer_grpc.__all__) >= SHARED
    assert set(bearer_grpc.aio.__all__) >= SHARED


def test_aio_flavour_differs_only_where_asyncio_needs_it() -> None:
    same = {"Policy", "current_principal", "NoPrincipal", "Backoff"}
    for name in same:
        assert getattr(bearer_grpc.aio, name) is getattr(bearer_grpc, name), name
    for name in SHARED - same:
        assert getattr(bearer_grpc.aio, name) is not getattr(bearer_grpc, name), name


def test_every_public_name_has_a_docstring() -> None:
    for module in (bearer_grpc, bearer_grpc.aio):
        for name in module.__all__:
            assert getattr(module, name).__doc__, f"{module.__name__}.{name} has no docstring"


@pytest.mark.process
def test_lazy_names_map_to_their_modules_and_core_stays_grpc_free() -> None:
    import subprocess
    import sys

    assert sorted(bearer_grpc._SOURCES) == bearer_grpc.__all__
    probe = "import sys, bearer_grpc, bearer_grpc.core.tokens; print('grpc' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
