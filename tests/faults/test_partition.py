"""A silent network partition between the TokenService and its verifiers and clients
(a proxy that drops every byte and closes nothing), sync and aio.

While cut off, local verifiers keep verifying with their last known keys and remote ones
refuse fresh tokens with VerifierUnavailable within their timeout (fail closed, no hang).
A token revoked on the service meanwhile is refused once the link heals, and
``ClientCredentials`` sources get tokens again, although the connections caught in the
partition never hear an end: each must notice by its own deadlines.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from bearer_grpc import Backoff, ClientCredentials
from bearer_grpc import aio as bearer_aio
from bearer_grpc.core.errors import TokenRevoked, VerifierUnavailable
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.faults.conftest import TIMEOUT, Deployment, build_verifier, issue_token, token_stub
from tests.harness import LoopThread, wait_until
from tests.proxy import proxy

pytestmark = pytest.mark.process

FAST = Backoff(initial=0.05, maximum=0.5)
RESYNC = 1.0
"""Each WatchRevocations stream lives this long: the verifiers' bound on a silent link."""
RECOVERY = 30.0


class Driven:
    """A verifier of either flavour, driven from the test thread."""

    def __init__(self, verifier: Any, loop: LoopThread | None) -> None:
        self.verifier = verifier
        self.loop = loop

    def verify(self, token: str) -> Any:
        if self.loop is None:
            return self.verifier.verify(token)
        return self.loop.run(self.verifier.verify(token))

    def refuses(self, token: str, error: type[BaseException]) -> bool:
        """Whether verifying ``token`` raises ``error`` (False while unavailable)."""
        try:
            self.verify(token)
        except error:
            return True
        except VerifierUnavailable:  # remote: not reconnected yet
            return False
        return False

    def close(self) -> None:
        if self.loop is None:
            self.verifier.close()
        else:
            self.loop.run(self.verifier.aclose())


def test_verifiers_ride_out_a_silent_partition(deployment: Deployment) -> None:
    secret = deployment.add_client("svc")
    deployment.start()
    with token_stub(deployment.target) as stub:
        tokens = [issue_token(stub, "svc", secret) for _ in range(6)]
    victim, fresh_local, fresh_remote = tokens[0], tokens[1], tokens[2:]
    loop = LoopThread()
    options: dict[str, Any] = {"backoff": FAST, "resync_interval": RESYNC, "timeout": 1.0}
    with proxy(deployment.target) as link:
        verifiers = {
            f"{flavour} {mode}": Driven(
                build_verifier(flavour, mode, link.target, **options),
                loop if flavour == "aio" else None,
            )
            for flavour in ("sync", "aio")
            for mode in ("from_token_service", "remote")
        }
        try:
            for verifier in verifiers.values():
                assert verifier.verify(victim).token_id

            link.partition()
            with token_stub(deployment.target) as stub:  # the service itself is fine
                stub.RevokeToken(pb.RevokeTokenRequest(token=victim), timeout=TIMEOUT)
            for name, verifier in verifiers.items():
                if name.endswith("remote"):
                    with pytest.raises(VerifierUnavailable):
                        verifier.verify(fresh_remote.pop())
                else:
                    assert verifier.verify(fresh_local).token_id, name

            link.heal()
            for verifier in verifiers.values():
                wait_until(lambda v=verifier: v.refuses(victim, TokenRevoked), timeout=RECOVERY)
        finally:
            for verifier in verifiers.values():
                verifier.close()
            loop.close()


def test_client_credentials_get_tokens_again_after_a_silent_partition(
    deployment: Deployment,
) -> None:
    secret = deployment.add_client("svc")
    deployment.start()
    loop = LoopThread()
    options: dict[str, Any] = {"backoff": FAST, "timeout": 0.5}
    with proxy(deployment.target) as link:
        sync_source = ClientCredentials(link.target, "svc", secret, **options)
        aio_source = bearer_aio.ClientCredentials(link.target, "svc", secret, **options)
        sources = {
            "sync": sync_source.token,
            "aio": lambda: loop.run(aio_source.token()),
        }
        try:
            first = {name: token() for name, token in sources.items()}
            link.partition()
            sync_source.invalidate(first["sync"])  # a new token is needed
            aio_source.invalidate(first["aio"])
            for name, token in sources.items():
                with pytest.raises(grpc.RpcError) as info:
                    token()
                assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED, name  # type: ignore[attr-defined]

            link.heal()
            for name, token in sources.items():
                fresh = wait_until(lambda t=token: _token_or_none(t), timeout=RECOVERY)
                assert fresh != first[name]
        finally:
            sync_source.close()
            loop.run(aio_source.aclose())
            loop.close()


def _token_or_none(token: Any) -> str | None:
    try:
        value: str = token()
    except grpc.RpcError:
        return None
    return value
