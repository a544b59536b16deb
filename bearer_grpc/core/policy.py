"""Which methods need what: public, a valid token or scopes, and which need certificate binding.

Rules name full gRPC methods (``/pkg.Service/Method``) or whole services
(``/pkg.Service/*``). The most specific rule wins: a method's own rule over its
service's, and either over the default, which is "a valid token, no particular scope"
(deny by default: nothing is public unless named). Health checking and reflection are
public unless the policy names them itself.

Requiring certificate-bound tokens (``certificate_bound``) is a separate list that adds
to what the scope rules say: a method needs binding when it or its service is listed,
and keeps the scopes its own or its service's rule asks for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
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
        certificate_bound: The token must be certificate-bound (RFC 8705: a ``cnf``
            ``x5t#S256`` claim) to the call's client certificate; an unbound token is
            refused even when valid.
    """

    public: bool = False
    scopes: tuple[str, ...] = ()
    certificate_bound: bool = False


PUBLIC: Final = Rule(public=True)
AUTHENTICATED: Final = Rule()


class Policy:
    """Per-method access rules for a protected server.

    Args:
        public: Methods or ``/pkg.Service/*`` patterns that need no token.
        scopes: Method or pattern → scopes a token must carry.
        certificate_bound: Methods or ``/pkg.Service/*`` patterns that accept
            certificate-bound tokens only (RFC 8705); their scopes still apply. Any
            method refuses a bound token on a call without its certificate; these
            also refuse unbound tokens.
        strict: When true, :meth:`check_covers` refuses methods no rule names, so a
            server cannot start with a method nobody decided about.
        default_public: Also make health checking and reflection public (unless named in
            ``public``, ``scopes`` or ``certificate_bound`` already). Default true.

    Raises:
        PolicyError: A pattern is malformed, a scope is invalid, or one pattern is both
            public and scoped, or both public and certificate-bound.
    """

    def __init__(
        self,
        public: Iterable[str] = (),
        scopes: Mapping[str, Iterable[str]] | None = None,
        *,
        certificate_bound: Iterable[str] = (),
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
        _require_binding(rules, [_check_pattern(pattern) for pattern in certificate_bound])
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


def _require_binding(rules: dict[str, Rule], patterns: list[str]) -> None:
    """Mark ``patterns`` certificate-bound in ``rules``, services before methods.

    A service pattern marks the service's rule and every method rule under it (those
    would otherwise win over it), except methods named public; a method without a rule
    of its own gets its service's, bound, so its scopes stay what they were.
    """
    for pattern in sorted(patterns, key=lambda p: not p.endswith("/*")):
        if rules.get(pattern) is PUBLIC:
            raise PolicyError(f"{pattern} is both public and certificate-bound")
        service = pattern.rpartition("/")[0] + "/"
        inherited = rules.get(pattern) or rules.get(service + "*", AUTHENTICATED)
        if inherited.public:  # a method of a public service: now it needs a token
            inherited = AUTHENTICATED
        rules[pattern] = replace(inherited, certificate_bound=True)
        if pattern.endswith("/*"):
            for name, rule in list(rules.items()):
                if name.startswith(service) and not rule.public:
                    rules[name] = replace(rule, certificate_bound=True)


def _check_pattern(pattern: str) -> str:
    if not isinstance(pattern, str) or _METHOD.fullmatch(pattern) is None:
        raise PolicyError(f"not a method name or /pkg.Service/* pattern: {pattern!r}")
    return pattern
