"""README.md's "Protecting a service": its two Python blocks compile, and run as written
against a real TokenService (only the addresses are swapped for the test's own)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.examples._support import README_SHOP, README_TOKENS
from tests.harness import REPO, RunningService, load_example

README = REPO / "README.md"
HEADING = "## Protecting a service"


def _section() -> str:
    text = README.read_text()
    start = text.index(f"\n{HEADING}\n") + len(HEADING) + 2
    end = text.index("\n## ", start)
    return text[start:end]


def _python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", _section(), re.M | re.S)


def test_section_follows_the_tour() -> None:
    headings = re.findall(r"^## .*$", README.read_text(), re.M)
    assert headings[headings.index("## A five-minute tour") + 1] == HEADING


def test_section_points_to_the_examples() -> None:
    assert "(examples/README.md)" in _section()
    assert (REPO / "examples" / "README.md").is_file()


def test_blocks_compile() -> None:
    blocks = _python_blocks()
    assert len(blocks) == 2, "a server block and a client block"
    for number, block in enumerate(blocks, 1):
        compile(block, f"README.md ({HEADING}, block {number})", "exec")


def _close(namespace: dict[str, Any]) -> None:
    for name in ("channel", "tokens", "verifier"):
        if name in namespace:
            namespace[name].close()
    if "server" in namespace:
        namespace["server"].stop(None).wait()


def test_blocks_run_against_a_real_token_service(
    service: RunningService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = service.add_client("shop", scopes=("orders.read", "orders.write"))
    monkeypatch.setenv("BEARER_GRPC_CLIENT_SECRET", shop.client_secret)
    shop_address = f"unix:{tmp_path / 'shop.sock'}"  # a fixed address, free by construction
    servicer = load_example("server").OrdersServicer  # the "yours" of the server block
    namespace: dict[str, Any] = {"OrdersServicer": servicer}
    try:
        for number, block in enumerate(_python_blocks(), 1):
            assert README_TOKENS in block and README_SHOP in block, f"block {number}"
            code = block.replace(README_TOKENS, service.target).replace(README_SHOP, shop_address)
            exec(compile(code, f"README.md block {number}", "exec"), namespace)  # noqa: S102
        order = namespace["order"]
        assert (order.order_id, order.created_by) == ("order-1", "shop-admin")
        # and the server block really protects the service: no token, no order
        pb = load_example("server").pb
        with grpc.insecure_channel(shop_address) as bare:
            stub = namespace["orders_pb2_grpc"].OrdersServiceStub(bare)
            with pytest.raises(grpc.RpcError) as caught:
                stub.GetOrder(pb.GetOrderRequest(order_id="order-1"), timeout=10)
        assert isinstance(caught.value, grpc.Call)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    finally:
        _close(namespace)
