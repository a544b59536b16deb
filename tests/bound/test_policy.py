"""``Policy(certificate_bound=[...])``: which methods accept certificate-bound tokens
only, and how that composes with public methods and scopes."""

from __future__ import annotations

import pytest

from bearer_grpc import Policy, PolicyError
from bearer_grpc.core.policy import Rule

ORDERS = "/shop.v1.Orders"


def test_nothing_requires_binding_by_default() -> None:
    policy = Policy(scopes={f"{ORDERS}/*": ["orders.read"]})
    assert not policy.rule_for(f"{ORDERS}/Get").certificate_bound
    assert not policy.rule_for("/other.v1.Service/Method").certificate_bound


def test_a_bound_service_keeps_its_scopes_and_binds_its_scoped_methods() -> None:
    policy = Policy(
        scopes={f"{ORDERS}/*": ["orders.read"], f"{ORDERS}/Create": ["orders.write"]},
        certificate_bound=[f"{ORDERS}/*"],
    )
    assert policy.rule_for(f"{ORDERS}/Get") == Rule(scopes=("orders.read",), certificate_bound=True)
    assert policy.rule_for(f"{ORDERS}/Create") == Rule(
        scopes=("orders.write",), certificate_bound=True
    )
    assert not policy.rule_for("/shop.v1.Carts/Get").certificate_bound


def test_a_bound_method_inherits_its_services_scopes() -> None:
    policy = Policy(scopes={f"{ORDERS}/*": ["orders.read"]}, certificate_bound=[f"{ORDERS}/Refund"])
    assert policy.rule_for(f"{ORDERS}/Refund") == Rule(
        scopes=("orders.read",), certificate_bound=True
    )
    assert policy.rule_for(f"{ORDERS}/Get") == Rule(scopes=("orders.read",))


def test_a_bound_method_without_any_rule_needs_a_valid_bound_token() -> None:
    policy = Policy(certificate_bound=[f"{ORDERS}/Refund"])
    assert policy.rule_for(f"{ORDERS}/Refund") == Rule(certificate_bound=True)


def test_a_method_named_public_stays_public_in_a_bound_service() -> None:
    policy = Policy(public=[f"{ORDERS}/Ping"], certificate_bound=[f"{ORDERS}/*"])
    assert policy.rule_for(f"{ORDERS}/Ping").public
    assert policy.rule_for(f"{ORDERS}/Get") == Rule(certificate_bound=True)


def test_a_bound_method_of_a_public_service_needs_a_token() -> None:
    policy = Policy(public=[f"{ORDERS}/*"], certificate_bound=[f"{ORDERS}/Refund"])
    assert policy.rule_for(f"{ORDERS}/Refund") == Rule(certificate_bound=True)
    assert policy.rule_for(f"{ORDERS}/Get").public


def test_naming_health_bound_takes_it_out_of_the_default_public_services() -> None:
    policy = Policy(certificate_bound=["/grpc.health.v1.Health/*"])
    assert policy.rule_for("/grpc.health.v1.Health/Check") == Rule(certificate_bound=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"public": [f"{ORDERS}/*"], "certificate_bound": [f"{ORDERS}/*"]}, "public and cert"),
        ({"certificate_bound": ["shop.v1.Orders/Get"]}, "not a method name"),
        ({"certificate_bound": f"{ORDERS}/*"}, "not a method name"),  # a string, not a list
    ],
)
def test_contradictions_and_malformed_patterns_are_refused(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        Policy(**kwargs)  # type: ignore[arg-type]


def test_a_bound_pattern_counts_as_a_decision_in_strict_mode() -> None:
    policy = Policy(certificate_bound=[f"{ORDERS}/*"], strict=True)
    policy.check_covers([f"{ORDERS}/Get"])
    with pytest.raises(PolicyError, match="Carts/Get"):
        policy.check_covers(["/shop.v1.Carts/Get"])
