"""bearer_grpc for ``grpc.aio``: the same names as :mod:`bearer_grpc`, asyncio flavoured."""

from bearer_grpc._client.interceptor_aio import BearerClientInterceptor, bearer_call_credentials
from bearer_grpc._client.sources_aio import ClientCredentials, StaticToken, TokenRequestError
from bearer_grpc._server.interceptor_aio import BearerServerInterceptor
from bearer_grpc._server.principal import current_principal
from bearer_grpc._verifier.protocol import SupportsLookup, SupportsRecheck
from bearer_grpc._verifier.protocol_aio import SupportsVerify
from bearer_grpc._verifier.verifier_aio import AnyIssuer, Verifier
from bearer_grpc.core.backoff import Backoff
from bearer_grpc.core.errors import NoPrincipal
from bearer_grpc.core.policy import Policy

__all__ = [
    "AnyIssuer",
    "Backoff",
    "BearerClientInterceptor",
    "BearerServerInterceptor",
    "ClientCredentials",
    "NoPrincipal",
    "Policy",
    "StaticToken",
    "SupportsLookup",
    "SupportsRecheck",
    "SupportsVerify",
    "TokenRequestError",
    "Verifier",
    "bearer_call_credentials",
    "current_principal",
]
