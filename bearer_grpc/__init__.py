"""bearer_grpc: bearer token authentication for gRPC microservices.

A TokenService issues short-lived signed access tokens (JWT, RFC 9068) to services with
client credentials and to people with passwords; every server verifies them locally
against the published keys, or remotely with the VerifyToken RPC.
"""

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
from bearer_grpc.core.tokens import Principal, TokenVerifier

__all__ = [
    "AuthError",
    "BearerGrpcError",
    "InsufficientScope",
    "Principal",
    "PublicKeySet",
    "SigningKey",
    "TokenExpired",
    "TokenInvalid",
    "TokenMalformed",
    "TokenMissing",
    "TokenRevoked",
    "TokenVerifier",
    "VerifierUnavailable",
]
