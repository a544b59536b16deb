"""The documentation: every public name has its reference entry, and no link points nowhere.

``scripts/docs`` builds the site with warnings as errors, which already refuses a page of
``docs/`` linking to a missing page, file or anchor. These tests cover what that build
does not read: the Markdown files outside ``docs/`` and the ``docs/...`` paths the code
names in its docstrings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bearer_grpc
import bearer_grpc.aio

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
TESTING_NAMES = ("FrozenClock", "TestIssuer", "serve", "serve_aio")

_DIRECTIVE = re.compile(r"^::: ([\w.]+)$", re.M)
_INLINE_LINK = re.compile(r"\]\(([^()\s]+)\)")
_DOCS_PATH = re.compile(r"\bdocs/[\w./-]+\.\w+")
PAGES = sorted(
    [*REPO.glob("*.md"), *(REPO / "examples").rglob("*.md"), *DOCS.rglob("*.md")],
    key=lambda page: page.relative_to(REPO).as_posix(),
)


def _documented() -> set[str]:
    """The objects the API reference pages render (``::: name`` lines)."""
    return {
        name
        for page in (DOCS / "api").glob("*.md")
        for name in _DIRECTIVE.findall(page.read_text())
    }


def test_every_public_name_is_in_the_api_reference() -> None:
    expected = {f"bearer_grpc.{name}" for name in bearer_grpc.__all__}
    expected |= {  # names bearer_grpc.aio shares with bearer_grpc are documented once
        f"bearer_grpc.aio.{name}"
        for name in bearer_grpc.aio.__all__
        if getattr(bearer_grpc.aio, name) is not getattr(bearer_grpc, name, None)
    }
    expected |= {f"bearer_grpc.testing.{name}" for name in TESTING_NAMES}
    assert sorted(expected - _documented()) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_relative_links_point_to_existing_files(page: Path) -> None:
    missing = []
    for target in _INLINE_LINK.findall(page.read_text()):
        path = target.partition("#")[0]
        if not path or re.match(r"^[a-z][a-z0-9+.-]*:", path):  # an anchor, or a URL
            continue
        if not (page.parent / path).exists():
            missing.append(target)
    assert missing == []


def test_docs_paths_named_in_the_code_exist() -> None:
    missing = sorted(
        f"{source.relative_to(REPO)}: {path}"
        for source in (REPO / "bearer_grpc").rglob("*.py")
        for path in _DOCS_PATH.findall(source.read_text())
        if not (REPO / path).is_file()
    )
    assert missing == []
