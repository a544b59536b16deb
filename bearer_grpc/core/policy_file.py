"""The policy file: one TOML file that ``bearer-grpc authz`` and Python services share.

::

    # Methods are /package.Service/Method, or /package.Service/* for a whole service.
    strict = true                       # refuse methods no rule names (default false)
    public = ["/grpc.health.v1.Health/*"]

    [scopes]
    "/shop.v1.Orders/*" = ["orders.read"]
    "/shop.v1.Orders/CreateOrder" = ["orders.write"]

Each top-level key is the :class:`~bearer_grpc.core.policy.Policy` argument of the same
name (``public``, ``scopes``, ``strict``, ``default_public``); a new ``Policy`` option
becomes a file key by adding one row to ``_FIELDS``. TOML rather than YAML: Python reads
it without a dependency (``tomllib``), it has no implicit typing (``no`` stays a string,
``1.10`` cannot become a float by accident), and method names must be quoted, so nothing
is guessed. A file is read whole or not at all: any mistake raises one
:class:`~bearer_grpc.core.errors.PolicyError` naming the file and the line, never a
half-loaded policy.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from bearer_grpc.core.errors import PolicyError
from bearer_grpc.core.policy import Policy

MAX_POLICY_BYTES: Final = 1024 * 1024
"""Largest policy file read (checked before parsing)."""

_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$|\s*\(at end of document\)$")


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read a policy file (see the module's documentation for the format).

    Raises:
        PolicyError: The file cannot be read, is larger than :data:`MAX_POLICY_BYTES`,
            is not TOML, or breaks a rule; the message names the file and the line.
    """
    name = os.fspath(path)
    try:
        with Path(name).open("rb") as file:
            data = file.read(MAX_POLICY_BYTES + 1)
    except OSError as err:
        raise PolicyError(f"{name}: cannot read the policy file ({err.strerror})") from err
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"{name}: larger than {MAX_POLICY_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PolicyError(f"{name}: not UTF-8 text") from err
    return parse_policy(text, source=name)


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """A :class:`Policy` from the text of a policy file.

    Args:
        text: TOML text.
        source: What to call the text in error messages (a file name).

    Raises:
        PolicyError: Not TOML, an unknown key, a value of the wrong type, or a rule
            :class:`Policy` refuses.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise PolicyError(_syntax_error(source, str(err), text)) from err
    where = _Locator(text, source)
    arguments: dict[str, Any] = {}
    for key, value in document.items():
        read = _FIELDS.get(key)
        if read is None:
            known = ", ".join(sorted(_FIELDS))
            raise PolicyError(where.key(key, f"unknown key {key!r} (known: {known})"))
        arguments[key] = read(key, value, where)
    try:
        return Policy(**arguments)
    except PolicyError as err:
        raise PolicyError(where.value(_culprit(arguments), err.message)) from err


def _syntax_error(source: str, message: str, text: str) -> str:
    """The message of ``tomllib``, with its position moved to the front.

    A position at the end of the document is reported as its last line.
    """
    match = _POSITION.search(message)
    if match is None:
        return f"{source}: {message}"
    if match.group(1) is None:
        return f"{source}, line {max(1, len(text.splitlines()))}: {message[: match.start()]}"
    line, column = match.group(1), match.group(2)
    return f"{source}, line {line}: {message[: match.start()]} (column {column})"


def _culprit(arguments: Mapping[str, Any]) -> str | None:
    """The first pattern that makes :class:`Policy` refuse, tried one rule at a time."""
    for pattern in arguments.get("public", ()):
        try:
            Policy(public=[pattern], default_public=False)
        except PolicyError:
            return str(pattern)
    public = set(arguments.get("public", ()))
    for pattern, scopes in arguments.get("scopes", {}).items():
        if pattern in public:
            return str(pattern)
        try:
            Policy(scopes={pattern: scopes}, default_public=False)
        except PolicyError:
            return str(pattern)
    return None


class _Locator:
    """Finds the line of a key or a string in the text (tomllib reports no positions)."""

    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source

    def key(self, key: str, message: str) -> str:
        bare = re.compile(rf"\s*(?:\[\s*)?(?:{re.escape(key)}|[\"']{re.escape(key)}[\"'])\s*[=\]]")
        return self._at(lambda line: bare.match(line) is not None, message)

    def value(self, text: str | None, message: str) -> str:
        if text is None:
            return f"{self.source}: {message}"
        quoted = (f'"{text}"', f"'{text}'")
        return self._at(lambda line: any(q in line for q in quoted), message)

    def _at(self, found: Callable[[str], bool], message: str) -> str:
        for number, line in enumerate(self.lines, 1):
            if found(line):
                return f"{self.source}, line {number}: {message}"
        return f"{self.source}: {message}"


def _strings(key: str, value: Any, where: _Locator) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PolicyError(where.key(key, f"{key} must be a list of strings"))
    return value


def _scopes(key: str, value: Any, where: _Locator) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise PolicyError(where.key(key, f"{key} must be a table of method = [scopes]"))
    for pattern, scopes in value.items():
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise PolicyError(
                where.value(pattern, f"the scopes of {pattern} must be a list of strings")
            )
    return value


def _flag(key: str, value: Any, where: _Locator) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(where.key(key, f"{key} must be true or false"))
    return value


_FIELDS: Final[dict[str, Callable[[str, Any, _Locator], Any]]] = {
    "public": _strings,
    "scopes": _scopes,
    "strict": _flag,
    "default_public": _flag,
}
"""File key → how its value is read; each is the ``Policy`` argument of that name."""
