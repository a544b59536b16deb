"""Page tokens cannot be forged: a changed, made-up or borrowed one is INVALID_ARGUMENT,
and so is a page size out of bounds."""

from __future__ import annotations

import base64
import json

import grpc
import pytest

from bearer_grpc.service.admin_paging import Pages
from bearer_grpc.v1 import admin_service_pb2 as apb
from tests.admin.conftest import AdminCaller
from tests.harness import refusal


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _genuine(admin: AdminCaller) -> str:
    for name in ("a-1", "a-2", "a-3"):
        admin.stub.CreateClient(apb.CreateClientRequest(name=name, audiences=["orders"]))
    token: str = admin.stub.ListClients(apb.ListClientsRequest(page_size=1)).next_page_token
    assert token
    return token


def _tampered(genuine: str) -> list[str]:
    payload, _, mac = genuine.partition(".")
    forged_payload = _b64(json.dumps(["clients", "a-2"]).encode())
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    return [
        forged_payload + "." + mac,  # another position under the old MAC
        payload + "." + flipped,  # one MAC character changed
        payload,  # no MAC
        payload + ".",
        "." + mac,
        forged_payload + "." + _b64(b"\0" * 32),  # a made-up MAC
        "not a token at all",
        "x" * 600,  # oversized
        genuine + "x",
        "é" + genuine,
    ]


def test_a_genuine_token_reads_the_next_page(admin: AdminCaller) -> None:
    token = _genuine(admin)
    page = admin.stub.ListClients(apb.ListClientsRequest(page_size=1, page_token=token))
    assert [c.name for c in page.clients] == ["a-2"]


def test_tampered_page_tokens_are_invalid_argument(admin: AdminCaller) -> None:
    for bad in _tampered(_genuine(admin)):
        error = refusal(
            lambda bad=bad: admin.stub.ListClients(  # type: ignore[misc]
                apb.ListClientsRequest(page_token=bad), timeout=10
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert error.details() == "invalid page_token"


def test_a_token_of_another_list_is_invalid_argument(admin: AdminCaller) -> None:
    token = _genuine(admin)
    for call in (
        lambda: admin.stub.ListUsers(apb.ListUsersRequest(page_token=token)),
        lambda: admin.stub.ListKeys(apb.ListKeysRequest(page_token=token)),
        lambda: admin.stub.ListAuditEvents(apb.ListAuditEventsRequest(page_token=token)),
        lambda: admin.stub.ListRevocations(apb.ListRevocationsRequest(page_token=token)),
    ):
        assert refusal(call).code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_token_of_another_deployment_is_invalid_argument(admin: AdminCaller) -> None:
    other = Pages(b"k" * 32).token("clients", "a-1")  # well formed, another key
    error = refusal(lambda: admin.stub.ListClients(apb.ListClientsRequest(page_token=other)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("size", [-1, 1001])
def test_page_sizes_out_of_bounds_are_invalid_argument(admin: AdminCaller, size: int) -> None:
    for call in (
        lambda: admin.stub.ListClients(apb.ListClientsRequest(page_size=size)),
        lambda: admin.stub.ListAuditEvents(apb.ListAuditEventsRequest(page_size=size)),
    ):
        assert refusal(call).code() == grpc.StatusCode.INVALID_ARGUMENT


def test_revocation_pages_are_newest_first_without_gaps(admin: AdminCaller) -> None:
    for n in range(5):
        admin.stub.RevokeTokenId(apb.RevokeTokenIdRequest(token_id=f"jti-{n}"))
    seen: list[str] = []
    token = ""
    while True:
        page = admin.stub.ListRevocations(apb.ListRevocationsRequest(page_size=2, page_token=token))
        seen += [r.token_id for r in page.revocations]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"jti-{n}" for n in reversed(range(5))]
