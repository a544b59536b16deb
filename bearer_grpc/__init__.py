"""bearer_grpc: bearer token authentication for gRPC microservices.

A TokenService issues short-lived signed access tokens (JWT, RFC 9068) to services with
client credentials and to people with passwords; every server verifies them locally
against the published keys, or remotely with the VerifyToken RPC.

Names are imported on first use (PEP 562), so ``import bearer_grpc.core`` or the CLI
does not load gRPC before it needs it. The same names for ``grpc.aio`` are in
:mod:`bearer_grpc.aio`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bearer_grpc._client.interceptor import BearerClientInterceptor, bearer_call_credentials
    from bearer_grpc._client.sources import ClientCredentials, StaticToken, TokenRequestError
    from bearer_grpc._server.interceptor import BearerServerInterceptor
    from bearer_grpc._server.principal import current_principal
    from bearer_grpc._verifier.protocol import SupportsLookup, SupportsRecheck, SupportsVerify
    from bearer_grpc._verifier.verifier import AnyIssuer, Verifier
    from bearer_grpc.core.backoff import Backoff
    from bearer_grpc.core.discovery import Refresh
    from bearer_grpc.core.errors import (
        AuthError,
        BearerGrpcError,
        InsufficientScope,
        KeyMaterialError,
        NoPrincipal,
        PolicyError,
        TokenBindingMismatch,
        TokenExpired,
        TokenInvalid,
        TokenMalformed,
        TokenMissing,
        TokenRevoked,
        VerifierUnavailable,
    )
    from bearer_grpc.core.keys import PublicKeySet, SigningKey
    from bearer_grpc.core.policy import Policy
    from bearer_grpc.core.profiles import TokenProfile
    from bearer_grpc.core.tokens import Principal, TokenVerifier

__version__ = "0.1.0"
"""This release (the package's metadata reads it from here)."""

# Where each public name lives. Names are imported on first use, so that importing
# bearer_grpc (or the CLI, which sets GRPC_VERBOSITY first) loads gRPC only when needed.
_SOURCES: dict[str, str] = {
    "AnyIssuer": "bearer_grpc._verifier.verifier",
    "AuthError": "bearer_grpc.core.errors",
    "Backoff": "bearer_grpc.core.backoff",
    "BearerClientInterceptor": "bearer_grpc._client.interceptor",
    "BearerGrpcError": "bearer_grpc.core.errors",
    "BearerServerInterceptor": "bearer_grpc._server.interceptor",
    "ClientCredentials": "bearer_grpc._client.sources",
    "InsufficientScope": "bearer_grpc.core.errors",
    "KeyMaterialError": "bearer_grpc.core.errors",
    "NoPrincipal": "bearer_grpc.core.errors",
    "Policy": "bearer_grpc.core.policy",
    "PolicyError": "bearer_grpc.core.errors",
    "Principal": "bearer_grpc.core.tokens",
    "PublicKeySet": "bearer_grpc.core.keys",
    "Refresh": "bearer_grpc.core.discovery",
    "SigningKey": "bearer_grpc.core.keys",
    "StaticToken": "bearer_grpc._client.sources",
    "SupportsLookup": "bearer_grpc._verifier.protocol",
    "SupportsRecheck": "bearer_grpc._verifier.protocol",
    "SupportsVerify": "bearer_grpc._verifier.protocol",
    "TokenBindingMismatch": "bearer_grpc.core.errors",
    "TokenExpired": "bearer_grpc.core.errors",
    "TokenInvalid": "bearer_grpc.core.errors",
    "TokenMalformed": "bearer_grpc.core.errors",
    "TokenMissing": "bearer_grpc.core.errors",
    "TokenProfile": "bearer_grpc.core.profiles",
    "TokenRequestError": "bearer_grpc._client.sources",
    "TokenRevoked": "bearer_grpc.core.errors",
    "TokenVerifier": "bearer_grpc.core.tokens",
    "Verifier": "bearer_grpc._verifier.verifier",
    "VerifierUnavailable": "bearer_grpc.core.errors",
    "bearer_call_credentials": "bearer_grpc._client.interceptor",
    "current_principal": "bearer_grpc._server.principal",
}

# Listed again for static tools (type checkers, the API reference); a test keeps the two
# lists equal.
__all__ = [
    "AnyIssuer",
    "AuthError",
    "Backoff",
    "BearerClientInterceptor",
    "BearerGrpcError",
    "BearerServerInterceptor",
    "ClientCredentials",
    "InsufficientScope",
    "KeyMaterialError",
    "NoPrincipal",
    "Policy",
    "PolicyError",
    "Principal",
    "PublicKeySet",
    "Refresh",
    "SigningKey",
    "StaticToken",
    "SupportsLookup",
    "SupportsRecheck",
    "SupportsVerify",
    "TokenBindingMismatch",
    "TokenExpired",
    "TokenInvalid",
    "TokenMalformed",
    "TokenMissing",
    "TokenProfile",
    "TokenRequestError",
    "TokenRevoked",
    "TokenVerifier",
    "Verifier",
    "VerifierUnavailable",
    "bearer_call_credentials",
    "current_principal",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module 'bearer_grpc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
