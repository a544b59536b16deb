"""bearer_grpc for ``grpc.aio``: the same names as :mod:`bearer_grpc`, asyncio flavoured."""

from bearer_grpc._principal import current_principal
from bearer_grpc.aio._client import BearerClientInterceptor, bearer_call_credentials
from bearer_grpc.aio._server import BearerServerInterceptor
from bearer_grpc.aio._token_sources import ClientCredentials, StaticToken, TokenRequestError
from bearer_grpc.aio._verifier import Verifier
from bearer_grpc.core.backoff import Backoff
from bearer_grpc.core.errors import NoPrincipal
from bearer_grpc.core.policy import Policy

__all__ = [
    "Backoff",
    "BearerClientInterceptor",
    "BearerServerInterceptor",
    "ClientCredentials",
    "NoPrincipal",
    "Policy",
    "StaticToken",
    "TokenRequestError",
    "Verifier",
    "bearer_call_credentials",
    "current_principal",
]
