"""Which methods need what: public, a valid token, or a valid token with scopes.

Rules name full gRPC methods (``/pkg.Service/Method``) or whole services
(``/pkg.Service/*``). The most specific rule wins: a method's own rule over its
service's, and either over the default, which is "a valid token, no particular scope"
(deny by default: nothing is public unless named). Health checking and reflection are
public unless the policy names them itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from bearer_grpc.core.errors import InvalidRequest, PolicyError
from bearer_grpc.core.scopes import check_scopes

DEFAULT_PUBLIC: Final = (
    "/grpc.health.v1.Health/*",
    "/grpc.reflection.v1alpha.ServerReflection/*",
    "/grpc.reflection.v1.ServerReflection/*",
)
"""Services public unless the policy says otherwise: probes and tools carry no token."""

_METHOD = re.compile(r"/[A-Za-z_][\w.]*/(?:\*|[A-Za-z_]\w*)", re.ASCII)


@dataclass(frozen=True)
class Rule:
    """What one method needs.

    Attributes:
        public: No token needed (a token that is sent anyway is not checked).
        scopes: Scopes a valid token must carry (empty: any valid token).
    """

    public: bool = False
    scopes: tuple[str, ...] = ()


PUBLIC: Final = Rule(public=True)
AUTHENTICATED: Final = Rule()


class Policy:
    """Per-method access rules for a protected server.

    Args:
        public: Methods or ``/pkg.Service/*`` patterns that need no token.
        scopes: Method or pattern → scopes a token must carry.
        strict: When true, :meth:`check_covers` refuses methods no rule names, so a
            server cannot start with a method nobody decided about.
        default_public: Also make health checking and reflection public (unless named in
            ``public`` or ``scopes`` already). Default true.

    Raises:
        PolicyError: A pattern is malformed, a scope is invalid, or one pattern is both
            public and scoped.
    """

    def __init__(
        self,
        public: Iterable[str] = (),
        scopes: Mapping[str, Iterable[str]] | None = None,
        *,
        strict: bool = False,
        default_public: bool = True,
    ) -> None:
        rules: dict[str, Rule] = {}
        for pattern in public:
            rules[_check_pattern(pattern)] = PUBLIC
        for pattern, required in (scopes or {}).items():
            if rules.get(_check_pattern(pattern)) is PUBLIC:
                raise PolicyError(f"{pattern} is both public and scoped")
            try:
                rules[pattern] = Rule(scopes=check_scopes(required))
            except (InvalidRequest, TypeError) as err:
                raise PolicyError(f"invalid scope for {pattern}") from err
        if default_public:
            for pattern in DEFAULT_PUBLIC:
                rules.setdefault(pattern, PUBLIC)
        self._rules = rules
        self.strict = strict

    def __repr__(self) -> str:
        return f"Policy(rules={len(self._rules)}, strict={self.strict})"

    @staticmethod
    def from_file(path: str | os.PathLike[str]) -> Policy:
        """The policy in a TOML file, the same file ``bearer-grpc authz --policy`` reads.

        ::

            strict = true
            public = ["/grpc.health.v1.Health/*"]

            [scopes]
            "/shop.v1.Orders/*" = ["orders.read"]
            "/shop.v1.Orders/CreateOrder" = ["orders.write"]

        The keys are this constructor's arguments. The file is read whole or not at all.

        Args:
            path: The policy file.

        Raises:
            PolicyError: The file cannot be read, is not TOML, or breaks a rule; the
                message names the file and the line.
        """
        from bearer_grpc.core.policy_file import load_policy

        return load_policy(path)

    def rule_for(self, method: str) -> Rule:
        """The rule of a full method name (``/pkg.Service/Method``).

        Not memoised: method names come from callers, and two dict lookups are cheap.
        """
        exact = self._rules.get(method)
        if exact is not None:
            return exact
        service, _, _ = method.rpartition("/")
        return self._rules.get(service + "/*", AUTHENTICATED)

    def covers(self, method: str) -> bool:
        """Whether a rule names ``method`` or its service."""
        service, _, _ = method.rpartition("/")
        return method in self._rules or service + "/*" in self._rules

    def check_covers(self, methods: Iterable[str]) -> None:
        """In strict mode, refuse methods that no rule names.

        Raises:
            PolicyError: Listing the uncovered methods.
        """
        if not self.strict:
            return
        missing = sorted(m for m in methods if not self.covers(m))
        if missing:
            raise PolicyError("no policy rule for: " + ", ".join(missing))


def _check_pattern(pattern: str) -> str:
    if not isinstance(pattern, str) or _METHOD.fullmatch(pattern) is None:
        raise PolicyError(f"not a method name or /pkg.Service/* pattern: {pattern!r}")
    return pattern
