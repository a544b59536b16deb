"""The policy file: read whole or not at all, one clear error with the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bearer_grpc import Policy, PolicyError
from bearer_grpc.core.policy import PUBLIC, Rule
from bearer_grpc.core.policy_file import MAX_POLICY_BYTES, parse_policy

GOOD = """\
# comment
strict = true
public = ["/grpc.health.v1.Health/*"]

[scopes]
"/shop.v1.Orders/*" = ["orders.read"]
"/shop.v1.Orders/CreateOrder" = ["orders.write"]
"""


def test_a_file_gives_the_policy_the_constructor_would(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(GOOD)
    loaded = Policy.from_file(path)
    same = Policy(
        public=["/grpc.health.v1.Health/*"],
        scopes={
            "/shop.v1.Orders/*": ["orders.read"],
            "/shop.v1.Orders/CreateOrder": ["orders.write"],
        },
        strict=True,
    )
    for method in (
        "/grpc.health.v1.Health/Check",
        "/shop.v1.Orders/Get",
        "/shop.v1.Orders/CreateOrder",
        "/other.Svc/M",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    ):
        assert loaded.rule_for(method) == same.rule_for(method), method
    assert loaded.strict
    assert loaded.rule_for("/shop.v1.Orders/CreateOrder") == Rule(scopes=("orders.write",))


def test_an_empty_file_is_the_default_policy() -> None:
    policy = parse_policy("")
    assert not policy.strict
    assert policy.rule_for("/grpc.health.v1.Health/Check") is PUBLIC
    assert policy.rule_for("/any.Svc/M") == Rule()


def test_default_public_can_be_turned_off() -> None:
    policy = parse_policy("default_public = false")
    assert policy.rule_for("/grpc.health.v1.Health/Check") == Rule()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("strict = 1", 1, "strict must be true or false"),
        ('\n\nstrict = "yes"', 3, "strict must be true or false"),
        ('public = "/a.B/*"', 1, "public must be a list of strings"),
        ("public = [1]", 1, "public must be a list of strings"),
        ("\nfoo = 1", 2, "unknown key 'foo'"),
        ('[scope]\n"/a.B/*" = ["x"]', 1, "unknown key 'scope'"),
        ('[scopes]\n"/a.B/C" = "x"', 2, "the scopes of /a.B/C must be a list of strings"),
        ("scopes = 3", 1, "scopes must be a table"),
        ('public = ["/a.B/*", "no-slash"]', 1, "not a method name"),
        ('\n[scopes]\n"/a.B/*" = ["ok"]\n"/a.B/C" = ["has space"]', 4, "invalid scope for /a.B/C"),
        ('[scopes]\n"a.B/*" = ["x"]', 2, "not a method name"),
        ('public = ["/a.B/C"]\n\n[scopes]\n"/a.B/C" = ["x"]', 1, "both public and scoped"),
        ("strict = true\nstrict = false", 2, "Cannot overwrite a value"),
        ('public = ["/a.B/*"', 1, ""),
        ("x = = 1", 1, ""),
    ],
)
def test_a_bad_file_is_one_error_naming_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, source="policy.toml")
    message = str(raised.value)
    assert message.startswith(f"policy.toml, line {line}: "), message
    assert words in message
    assert "\n" not in message


def test_a_file_that_cannot_be_read_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        Policy.from_file(tmp_path / "missing.toml")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(PolicyError, match="not UTF-8"):
        Policy.from_file(tmp_path / "binary.toml")


def test_the_size_is_bounded_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_text("# " + "x" * MAX_POLICY_BYTES)
    with pytest.raises(PolicyError, match="larger than"):
        Policy.from_file(path)


def test_the_readme_example_loads(tmp_path: Path) -> None:
    from tests.mesh._support import readme_block

    path = tmp_path / "policy.toml"
    path.write_text(readme_block("policy:example"))
    policy = Policy.from_file(path)
    assert policy.rule_for("/shop.v1.OrdersService/UploadOrders") == Rule(scopes=("orders.write",))
    assert policy.rule_for("/shop.v1.OrdersService/GetOrder") == Rule(scopes=("orders.read",))
