"""One exception tree: every error class the library defines derives from BearerGrpcError,
and the tree drawn in ``bearer_grpc.core.errors`` names each of them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import grpc

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc.core import errors
from bearer_grpc.core.errors import BearerGrpcError


def _library_errors() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(bearer_grpc.__path__, "bearer_grpc."):
        if info.name.startswith("bearer_grpc.v1") or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.startswith("bearer_grpc.")
            ):
                found[f"{value.__module__}.{name}"] = value
    return found


def test_every_library_error_derives_from_bearer_grpc_error() -> None:
    outside = sorted(
        name for name, cls in _library_errors().items() if not issubclass(cls, BearerGrpcError)
    )
    assert outside == []


def test_the_drawn_tree_names_every_error() -> None:
    drawn = errors.__doc__ or ""
    missing = sorted({cls.__name__ for cls in _library_errors().values()} - set(drawn.split()))
    assert missing == []


def test_token_request_errors_are_also_rpc_errors() -> None:
    assert issubclass(bearer_grpc.TokenRequestError, grpc.RpcError)
    assert issubclass(bearer_grpc.aio.TokenRequestError, grpc.aio.AioRpcError)
    for cls in (bearer_grpc.TokenRequestError, bearer_grpc.aio.TokenRequestError):
        error = cls("tokens:50051", ValueError("boom"))
        assert isinstance(error, BearerGrpcError)
        assert error.code() is grpc.StatusCode.INTERNAL
        assert error.message == error.details()


def test_configuration_errors_keep_their_builtin_bases() -> None:
    assert issubclass(bearer_grpc.KeyMaterialError, ValueError)
    assert issubclass(bearer_grpc.PolicyError, ValueError)
    assert issubclass(bearer_grpc.NoPrincipal, LookupError)
