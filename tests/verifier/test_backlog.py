"""A verifier answers only once it has caught up with the revocation backlog.

The server announces where its backlog ends (initial metadata ``bearer-grpc-backlog-end``);
a verifier that just started must not accept a token revoked before it connected, even on
its very first call, even when thousands of revocations precede it in the backlog.
"""

from __future__ import annotations

import pytest

from bearer_grpc.core.errors import TokenRevoked
from bearer_grpc.store import open_store
from tests.harness import RunningService
from tests.verifier.conftest import Flavour, issue, revoke

BACKLOG = 800


@pytest.mark.slow
def test_new_verifier_refuses_a_token_revoked_behind_a_long_backlog_on_its_first_call(
    flavour: Flavour, service: RunningService, store_url: str
) -> None:
    store = open_store(store_url)
    try:
        for i in range(BACKLOG):
            store.revoke(f"backlog-{i}", 4_000_000_000, 1_800_000_000)
    finally:
        store.close()
    token = issue(service)
    revoke(service, token)  # the last of the backlog

    verifier = flavour.from_token_service(service.target, audience="orders")
    with pytest.raises(TokenRevoked):
        verifier.verify(token)
