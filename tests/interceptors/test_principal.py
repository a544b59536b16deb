"""``current_principal()`` and the public surface of the interceptors."""

from __future__ import annotations

import pytest

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc import current_principal
from bearer_grpc._server.principal import bind
from bearer_grpc.core.errors import NoPrincipal
from bearer_grpc.core.keys import PublicKeySet
from bearer_grpc.core.tokens import TokenVerifier
from bearer_grpc.testing import TestIssuer
from tests.harness import ECHO_AUDIENCE
from tests.interceptors.support import alice


def test_outside_a_call_there_is_no_principal() -> None:
    with pytest.raises(LookupError, match=r"outside an authenticated call") as raised:
        current_principal()
    assert isinstance(raised.value, NoPrincipal)


def test_bind_nests_and_restores(issuer: TestIssuer) -> None:
    verifier = TokenVerifier(PublicKeySet(issuer.jwks), issuer=issuer.issuer, clock=issuer.clock)
    principal = verifier.authenticate(alice(issuer).token, audience=ECHO_AUDIENCE)
    with bind(principal):
        assert current_principal() is principal
        with bind(None), pytest.raises(NoPrincipal):
            current_principal()
        assert current_principal() is principal
    with pytest.raises(NoPrincipal):
        current_principal()


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (bearer_grpc, {"BearerServerInterceptor", "Policy", "PolicyError", "Verifier"}),
        (bearer_grpc.aio, {"BearerServerInterceptor", "Policy", "Verifier"}),
    ],
    ids=["sync", "aio"],
)
def test_exported(module: object, names: set[str]) -> None:
    exported = module.__all__  # type: ignore[attr-defined]
    assert names | {"current_principal"} <= set(exported)
    assert module.current_principal is current_principal  # type: ignore[attr-defined]
