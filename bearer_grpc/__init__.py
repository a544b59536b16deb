"""bearer_grpc: bearer token authentication for gRPC microservices.

A TokenService issues short-lived signed access tokens (JWT, RFC 9068) to services with
client credentials and to people with passwords; every server verifies them locally
against the published keys, or remotely with the VerifyToken RPC.
"""

from bearer_grpc._client import BearerClientInterceptor, bearer_call_credentials
from bearer_grpc._principal import NoPrincipal, current_principal
from bearer_grpc._server import BearerServerInterceptor
from bearer_grpc._token_sources import ClientCredentials, StaticToken, TokenRequestError
from bearer_grpc._verifier import Verifier
from bearer_grpc.core.backoff import Backoff
from bearer_grpc.core.errors import (
    AuthError,
    BearerGrpcError,
    InsufficientScope,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenMissing,
    TokenRevoked,
    VerifierUnavailable,
)
from bearer_grpc.core.keys import PublicKeySet, SigningKey
from bearer_grpc.core.policy import Policy, PolicyError
from bearer_grpc.core.tokens import Principal, TokenVerifier

__all__ = [
    "AuthError",
    "Backoff",
    "BearerClientInterceptor",
    "BearerGrpcError",
    "BearerServerInterceptor",
    "ClientCredentials",
    "InsufficientScope",
    "NoPrincipal",
    "Policy",
    "PolicyError",
    "Principal",
    "PublicKeySet",
    "SigningKey",
    "StaticToken",
    "TokenExpired",
    "TokenInvalid",
    "TokenMalformed",
    "TokenMissing",
    "TokenRequestError",
    "TokenRevoked",
    "TokenVerifier",
    "Verifier",
    "VerifierUnavailable",
    "bearer_call_credentials",
    "current_principal",
]
