"""A Griffe extension: the reST markup of our docstrings, rendered by mkdocstrings.

The docstrings are Google style with the reST inline markup Python tools know:
roles such as ``:class:`~bearer_grpc.Principal``` or ``:meth:`close```, and ``::``
before a literal block. mkdocstrings renders Markdown, so before it does:

- each role becomes an optional cross-reference, a link where its target is in the API
  reference and plain code where it is not (a private helper, say). A name without dots
  is looked up from the documented object outwards, as Python would; ``~`` shows only
  its last part, as in Sphinx.
- ``text::`` becomes ``text:`` and a lone ``::`` goes; the indented block after it is a
  Markdown code block already.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(
    r":(?:py:)?(?P<role>class|meth|func|mod|data|attr|exc|obj):"
    r"`(?P<short>~?)(?P<target>[\w.]+)(?P<call>\(\))?`"
)
_LITERAL_MARKER = re.compile(r"(?P<text>\S?)[ \t]*::$", re.M)
_CALLABLE_ROLES = frozenset({"meth", "func"})


class RestMarkup(griffe.Extension):
    """Rewrites roles and literal-block markers in every docstring (see the module)."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring once the object tree is complete."""
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj, obj.docstring.value)


def rewrite(obj: griffe.Object, text: str) -> str:
    """``text`` with its roles as cross-references and its ``::`` markers as Markdown."""

    def reference(match: re.Match[str]) -> str:
        target = match["target"]
        title = target.rpartition(".")[2] if match["short"] else target
        if match["call"] or match["role"] in _CALLABLE_ROLES:
            title += "()"
        identifier = _resolve(obj, target)
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    text = _ROLE.sub(reference, text)
    return _LITERAL_MARKER.sub(lambda m: f"{m['text']}:" if m["text"] else "", text)


def _resolve(obj: griffe.Object, target: str) -> str:
    """The full path ``target`` names, seen from ``obj`` (``target`` itself if unknown)."""
    first, dot, rest = target.partition(".")
    scope: griffe.Object | None = obj
    while scope is not None:
        members = scope.all_members if isinstance(scope, griffe.Class) else scope.members
        if first in members:
            try:
                path = members[first].canonical_path
            except griffe.AliasResolutionError:
                return target
            return path + dot + rest
        scope = scope.parent
    return target
