"""``Verifier.from_token_service`` against a real TokenService, sync and aio.

Waits are deadlines (``wait_until``), never sleeps.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from bearer_grpc.core.errors import TokenInvalid, TokenRevoked, VerifierUnavailable
from bearer_grpc.core.keys import SigningKey
from bearer_grpc.core.tokens import issue_access_token
from bearer_grpc.service.admin import Admin
from bearer_grpc.store import open_store
from bearer_grpc.testing import FrozenClock
from tests.harness import RunningService, jwt_segment, wait_until
from tests.verifier.conftest import (
    Flavour,
    closed_port_target,
    foreign_token,
    issue,
    refused,
    restarted,
    revoke,
    stop,
)

ISSUER = "bearer-grpc"


def test_token_issued_by_the_service_verifies(flavour: Flavour, service: RunningService) -> None:
    verifier = flavour.from_token_service(service.target)
    token = issue(service)
    principal = verifier.verify(token)
    claims = jwt_segment(token, 1)
    assert principal.token_id == claims["jti"]
    assert principal.issuer == ISSUER
    assert "orders" in principal.audience
    assert verifier.verifier.local.issuer == ISSUER  # taken from GetJwks
    assert verifier.lookup(token) == principal


def test_wrong_audience_is_token_invalid(flavour: Flavour, service: RunningService) -> None:
    verifier = flavour.from_token_service(service.target, audience="billing")
    with pytest.raises(TokenInvalid):
        verifier.verify(issue(service))


def test_revocation_reaches_from_token_service_verifier_within_1s(
    flavour: Flavour, service: RunningService
) -> None:
    verifier = flavour.from_token_service(service.target)
    cached, uncached = issue(service), issue(service)
    verifier.verify(cached)
    revoke(service, cached)
    revoke(service, uncached)
    wait_until(
        lambda: (
            refused(lambda: verifier.lookup(cached), TokenRevoked)
            and refused(lambda: verifier.verify(uncached), TokenRevoked)
        ),
        timeout=1.0,
    )


def test_reconnects_and_applies_revocation_missed_while_disconnected(
    flavour: Flavour, service: RunningService, store_url: str
) -> None:
    verifier = flavour.from_token_service(service.target)
    cached, uncached = issue(service), issue(service)
    verifier.verify(cached)
    stop(service)

    store = open_store(store_url)
    try:
        now = int(time.time())
        for token in (cached, uncached):
            claims = jwt_segment(token, 1)
            store.revoke(claims["jti"], claims["exp"], now)
        staged = Admin(store).rotate_key(algorithm="ES256", delay=3600, kek=None)
    finally:
        store.close()
    assert verifier.lookup(cached) is not None  # nobody could tell it yet

    with restarted(store_url, service.target):
        wait_until(
            lambda: (
                refused(lambda: verifier.lookup(cached), TokenRevoked)
                and refused(lambda: verifier.verify(uncached), TokenRevoked)
            ),
            timeout=5.0,
        )
        # The keys were refetched on reconnecting too: the staged key is trusted already.
        wait_until(lambda: staged.kid in (verifier.verifier.local.keys or ()), timeout=5.0)


def test_expired_revocations_are_pruned_at_each_resync(
    flavour: Flavour, service: RunningService
) -> None:
    clock = FrozenClock(time.time())
    verifier = flavour.from_token_service(service.target, clock=clock, resync_interval=0.2)
    token = issue(service)
    verifier.verify(token)
    revoke(service, token)
    revocations = verifier.verifier.local.revocations
    wait_until(lambda: jwt_segment(token, 1)["jti"] in revocations, timeout=1.0)

    clock.advance(jwt_segment(token, 1)["exp"] - clock() + 31)  # past exp + leeway
    wait_until(lambda: len(revocations) == 0, timeout=2.0)


def test_service_down_keeps_last_known_good_keys(flavour: Flavour, service: RunningService) -> None:
    verifier = flavour.from_token_service(service.target)
    seen, unseen = issue(service), issue(service)
    verifier.verify(seen)
    stop(service)
    # An unknown kid makes the verifier refetch; the fetch fails and the keys stay.
    with pytest.raises(TokenInvalid):
        verifier.verify(foreign_token(ISSUER))
    assert verifier.verify(unseen).token_id == jwt_segment(unseen, 1)["jti"]


def _count_get_jwks(service: RunningService, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count GetJwks calls on the server side (each one reads ``authority.jwks``)."""
    calls = [0]
    jwks = service.authority.jwks

    def counting() -> str:
        calls[0] += 1
        return jwks()

    monkeypatch.setattr(service.authority, "jwks", counting)
    return calls


def test_key_rotation_new_kid_verifies_after_one_refetch(
    flavour: Flavour, service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = flavour.from_token_service(service.target)
    old = issue(service)
    verifier.verify(old)
    calls = _count_get_jwks(service, monkeypatch)

    record = service.admin.rotate_key(algorithm="ES256", delay=0, kek=None)
    service.authority.sync()
    # Signed with the new key itself, whichever key the service picks within this second.
    key = SigningKey.load(record.kid, record.alg, record.private_key, None)
    new = [_sign(key) for _ in range(50)]
    assert jwt_segment(new[0], 0)["kid"] == record.kid != jwt_segment(old, 0)["kid"]

    # 50 concurrent first sightings of the kid: one refetch, awaited by all of them.
    results = verifier.verify_all(new)
    assert [getattr(r, "token_id", r) for r in results] == [jwt_segment(t, 1)["jti"] for t in new]
    assert calls[0] == 1
    assert verifier.verify(old).token_id == jwt_segment(old, 1)["jti"]  # still published


def _sign(key: SigningKey) -> str:
    return issue_access_token(
        key,
        issuer=ISSUER,
        subject="orders-client",
        audience="orders",
        scopes=["orders.read"],
        client_id="orders-client",
        lifetime=300,
        now=int(time.time()),
    ).token


def test_unknown_kid_refetch_is_single_flight_and_rate_limited(
    flavour: Flavour, service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = flavour.from_token_service(service.target, refetch_interval=30)
    verifier.verify(issue(service))  # started, keys known
    calls = _count_get_jwks(service, monkeypatch)
    stranger = SigningKey.generate("ES256")  # a kid nobody publishes

    results = verifier.verify_all([_sign(stranger) for _ in range(50)])
    assert all(isinstance(result, TokenInvalid) for result in results)
    assert calls[0] == 1

    with pytest.raises(TokenInvalid):
        verifier.verify(_sign(stranger))
    assert calls[0] == 1  # this kid was looked for within refetch_interval: no second fetch


@pytest.mark.slow
def test_made_up_kid_does_not_hold_back_a_new_keys_refetch(
    flavour: Flavour, service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = flavour.from_token_service(service.target, refetch_interval=30)
    verifier.verify(issue(service))
    calls = _count_get_jwks(service, monkeypatch)
    with pytest.raises(TokenInvalid):
        verifier.verify(foreign_token(ISSUER))  # an unknown kid: one refetch, in vain
    assert calls[0] == 1

    record = service.admin.rotate_key(algorithm="ES256", delay=0, kek=None)
    service.authority.sync()
    key = SigningKey.load(record.kid, record.alg, record.private_key, None)
    token = _sign(key)

    def verified() -> bool:  # refetches stay a second apart; then this kid gets its own
        return not refused(lambda: verifier.verify(token), TokenInvalid)

    wait_until(verified, timeout=10)  # well inside the 30 s refetch_interval
    assert calls[0] == 2


def test_first_jwks_never_arrived_fails_closed(flavour: Flavour) -> None:
    verifier = flavour.from_token_service(closed_port_target(), startup_timeout=0.2)
    token = foreign_token(ISSUER)
    assert verifier.lookup(token) is None
    with pytest.raises(VerifierUnavailable):
        verifier.verify(token)
    assert verifier.verifier.local.keys is None


def test_close_stops_background_work_and_refuses(flavour: Flavour, service: RunningService) -> None:
    verifier = flavour.from_token_service(service.target)
    token = issue(service)
    verifier.verify(token)
    assert not verifier.background_done()

    verifier.close()
    verifier.close()  # idempotent
    assert verifier.background_done()
    with pytest.raises(VerifierUnavailable):
        verifier.verify(token)
    with pytest.raises(VerifierUnavailable):
        verifier.lookup(token)


def test_repr_names_target_not_secrets(flavour: Flavour, service: RunningService) -> None:
    verifier: Any = flavour.from_token_service(service.target).verifier
    assert service.target in repr(verifier)
    assert "mode=local" in repr(verifier)
