"""Who may call the AdminService: bearer_grpc's own interceptor, with the admin policy.

Its verifier is inside the authority (its keys, its revocations: no network hop).

Every AdminService method needs a valid access token for audience ``bearer-grpc`` with
scope ``bearer-grpc:admin``. The methods that hand out or replace a credential, or change
what one may do (:data:`SECRET_METHODS`), also need ``bearer-grpc:admin:secrets``, and
the ones that stage or withdraw signing keys (:data:`KEY_METHODS`)
``bearer-grpc:admin:keys``. The
TokenService's own methods stay public to the interceptor (each checks what it needs
itself), as do health checking and reflection.
"""

from __future__ import annotations

from typing import Final

from bearer_grpc._server.interceptor_aio import BearerServerInterceptor
from bearer_grpc.core.policy import Policy
from bearer_grpc.core.tokens import Principal
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.servicer import SERVICE_NAME
from bearer_grpc.service.settings import (
    ADMIN_AUDIENCE,
    ADMIN_KEYS_SCOPE,
    ADMIN_SCOPE,
    ADMIN_SECRETS_SCOPE,
)

ADMIN_SERVICE_NAME: Final = "bearer_grpc.v1.AdminService"
SECRET_METHODS: Final = (
    "CreateClient",
    "UpdateClient",
    "RotateClientSecret",
    "CreateUser",
    "SetUserPassword",
)
"""AdminService methods that also need :data:`ADMIN_SECRETS_SCOPE`.

They hand out or replace a credential, or decide what a credential may do: a caller who
could change a client's scopes could grant itself (or any client) the narrower admin
scopes too.
"""
KEY_METHODS: Final = ("RotateKey", "WithdrawKey")
"""AdminService methods that also need :data:`ADMIN_KEYS_SCOPE`."""


def admin_policy() -> Policy:
    """The policy of a ``bearer-grpc serve`` server (see the module docstring)."""
    scopes: dict[str, list[str]] = {f"/{ADMIN_SERVICE_NAME}/*": [ADMIN_SCOPE]}
    for method in SECRET_METHODS:
        scopes[f"/{ADMIN_SERVICE_NAME}/{method}"] = [ADMIN_SCOPE, ADMIN_SECRETS_SCOPE]
    for method in KEY_METHODS:
        scopes[f"/{ADMIN_SERVICE_NAME}/{method}"] = [ADMIN_SCOPE, ADMIN_KEYS_SCOPE]
    return Policy(public=[f"/{SERVICE_NAME}/*"], scopes=scopes)


class AuthorityVerifier:
    """Verifies admin tokens with the authority itself, for audience ``bearer-grpc``.

    It uses the authority's published keys, its revocation log (subjects and families
    included) and its issuer. In memory, on the event loop, like VerifyToken.

    Args:
        authority: The running authority.
    """

    def __init__(self, authority: TokenAuthority) -> None:
        self._authority = authority

    def __repr__(self) -> str:
        return f"AuthorityVerifier({self._authority!r})"

    async def verify(self, token: str) -> Principal:
        """The caller a token stands for, if it is valid for audience ``bearer-grpc``.

        Raises:
            AuthError: The token is not valid (expired, revoked, another audience...).
        """
        return self._authority.verify(token, audience=ADMIN_AUDIENCE)


def admin_interceptor(authority: TokenAuthority) -> BearerServerInterceptor:
    """The interceptor a ``bearer-grpc serve`` server runs every call through."""
    return BearerServerInterceptor(AuthorityVerifier(authority), admin_policy())
