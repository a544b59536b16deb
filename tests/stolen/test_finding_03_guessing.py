"""Finding 3: passwords could be guessed without limit, ``password`` was a password, and
one client with 40 calls in flight locked every user out.

Now failed sign-ins are counted in the store (shared by replicas) per (account, peer),
per peer and per account; after a few failures each attempt waits an exponentially
growing, bounded delay, decided before any scrypt work (RESOURCE_EXHAUSTED with
RetryInfo). The password pool gives each peer a fair share. New passwords follow NIST SP
800-63B.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bearer_grpc.core.errors import LoginThrottled
from bearer_grpc.service.server import ServeConfig
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.service.throttle import LoginThrottle, peer_address
from bearer_grpc.store import open_store, sqlite_url
from bearer_grpc.testing import FrozenClock
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness import (
    PASSWORD,
    Cli,
    RunningService,
    add_user,
    assert_one_line_error,
    password_request,
    running_service,
)
from tests.stolen._support import grpc_code

WRONG = "not the password at all"


def _login(stub: pb_grpc.TokenServiceStub, password: str) -> grpc.RpcError | None:
    try:
        stub.IssueToken(password_request("alice", password), timeout=30)
    except grpc.RpcError as err:
        return err
    return None


def _retry_delay(err: grpc.RpcError) -> int:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return int(info.retry_delay.seconds)
    raise AssertionError("no RetryInfo")


def _code(err: grpc.RpcError | None) -> grpc.StatusCode:
    return grpc.StatusCode.OK if err is None else err.code()  # type: ignore[attr-defined]


@pytest.mark.slow
def test_finding_3_password_guessing_is_throttled_with_growing_delays_before_the_scrypt_work(
    backend_url: str,
) -> None:
    clock = FrozenClock(float(int(time.time())))
    with running_service(backend_url, clock=clock) as service:
        add_user(service, "alice")
        stub = service.stub()
        for _ in range(6):  # a few failures are free; the sixth starts the delays
            assert _code(_login(stub, WRONG)) == grpc.StatusCode.UNAUTHENTICATED
        for delay in (1, 2, 4, 8):
            # Held: even the right password is refused, without being checked.
            held = _login(stub, PASSWORD)
            assert _code(held) == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert held is not None and _retry_delay(held) == delay
            clock.advance(delay)
            assert _code(_login(stub, WRONG)) == grpc.StatusCode.UNAUTHENTICATED
        clock.advance(16)
        assert _code(_login(stub, PASSWORD)) == grpc.StatusCode.OK  # and the count resets
        assert _code(_login(stub, WRONG)) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.slow
def test_finding_3_the_count_is_shared_by_replicas_through_the_store(backend_url: str) -> None:
    clock = FrozenClock(float(int(time.time())))
    with (
        running_service(backend_url, clock=clock) as a,
        running_service(backend_url, clock=clock) as b,
    ):
        add_user(a, "alice")
        for _ in range(6):
            assert _code(_login(a.stub(), WRONG)) == grpc.StatusCode.UNAUTHENTICATED
        assert _code(_login(b.stub(), PASSWORD)) == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_finding_3_delays_are_bounded_and_an_attacker_cannot_lock_the_owner_out(
    tmp_path: Path,
) -> None:
    """Per peer and per (account, peer) the delays stop growing at 15 minutes and the
    count is forgotten an hour after the last failure; the account-wide delay is a minute
    at most, and does not hold a peer that signed in to the account before."""
    clock = FrozenClock(float(int(time.time())))
    store = open_store(sqlite_url(tmp_path / "data"))
    throttle = LoginThrottle(store, clock)
    owner, attackers = "ipv4:10.0.0.1:40000", [f"ipv4:10.1.0.{i}:5000" for i in range(30)]
    try:
        throttle.begin_password("alice", owner)
        throttle.password_succeeded("alice", owner)
        held_attackers = 0
        for attacker in attackers:  # a distributed guesser fails from many addresses
            try:
                throttle.begin_password("alice", attacker)
            except LoginThrottled:
                held_attackers += 1
        assert held_attackers > 0
        with pytest.raises(LoginThrottled) as held:
            throttle.begin_password("alice", "ipv4:10.2.0.1:1")  # a newcomer waits...
        assert held.value.retry_after <= 60
        throttle.begin_password("alice", owner)  # ...the owner's known address does not

        lone = attackers[0]
        delays = []
        for _ in range(40):  # one address guessing on and on
            try:
                throttle.begin_password("bob", lone)
            except LoginThrottled as err:
                delays.append(err.retry_after)
                clock.advance(err.retry_after)
        assert max(delays) == 900
        clock.advance(3600 + 900)
        throttle.begin_password("bob", lone)  # forgotten: no permanent lockout
    finally:
        store.close()


def test_finding_3_peer_addresses_drop_the_port() -> None:
    assert peer_address("ipv4:10.0.0.7:51234") == "ipv4:10.0.0.7"
    assert peer_address("ipv6:[::1]:51234") == "ipv6:[::1]"
    assert peer_address("unix:/run/tokens.sock") == "unix:/run/tokens.sock"


@pytest.mark.slow
def test_finding_3_one_client_with_40_calls_in_flight_does_not_lock_other_clients_out(
    tmp_path: Path,
) -> None:
    """The flood comes over IPv4 loopback, the victim over IPv6 loopback: two peers."""
    settings = ServiceSettings(sync_interval=0.5)
    config = ServeConfig(listen="[::]:0", grace=1)
    with running_service(
        sqlite_url(tmp_path / "data"), settings=settings, config=config
    ) as service:
        add_user(service, "alice")
        port = service.target.rsplit(":", 1)[1]
        flood = pb_grpc.TokenServiceStub(service_channel(service, f"127.0.0.1:{port}"))
        victim = pb_grpc.TokenServiceStub(service_channel(service, f"[::1]:{port}"))
        start = threading.Barrier(41)

        def attack(i: int) -> grpc.StatusCode:
            start.wait(10)
            try:
                flood.IssueToken(password_request(f"user{i}", WRONG), timeout=60)
            except grpc.RpcError as err:
                return err.code()  # type: ignore[attr-defined, no-any-return]
            return grpc.StatusCode.OK

        with ThreadPoolExecutor(40) as pool:
            attacks = [pool.submit(attack, i) for i in range(40)]
            start.wait(10)
            # The first answer to the flood is a refusal: the pool is as full as it gets.
            wait(attacks, return_when=FIRST_COMPLETED)
            victim_code = grpc_code(
                lambda: victim.IssueToken(password_request("alice"), timeout=30)
            )
            codes = [a.result() for a in attacks]
        assert victim_code == grpc.StatusCode.OK
        assert set(codes) <= {
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        }
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 30


def service_channel(service: RunningService, target: str) -> grpc.Channel:
    channel = grpc.insecure_channel(target)
    service.channels.append(channel)
    return channel


@pytest.mark.parametrize(
    "password",
    [
        "password",  # the finding's example, and too short
        "passwordpassword",  # a common password, repeated
        "Password12345678!",  # a common password in digits and symbols
        "aaaaaaaaaaaaaaaaaaaa",  # repetitive
        "123456789012345678",  # sequential
        "alice-wonderland-2024",  # holds the user's name
    ],
)
def test_finding_3_common_or_weak_passwords_are_refused_for_new_users(
    cli: Cli, password: str
) -> None:
    result = cli("users", "add", "alice", "--audiences", "x", input=password + "\n")
    line = assert_one_line_error(result)
    if password != "password":  # (the word itself is in every message)
        assert password not in line


def test_finding_3_a_long_uncommon_password_needs_no_composition_rules(cli: Cli) -> None:
    cli.ok("users", "add", "alice", "--audiences", "x", input="correct horse battery staple\n")


def test_finding_3_new_password_rules_at_the_api() -> None:
    from bearer_grpc.service.passwords import MIN_PASSWORD_LENGTH, check_new_password

    assert MIN_PASSWORD_LENGTH == 15
    check_new_password("ünïcödé pässwörd wörks", username="alice")  # Unicode is fine
    from bearer_grpc.core.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="at least 15"):
        check_new_password("Tr0ub4dor&3xyz", username="alice")
