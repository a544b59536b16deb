"""Paging of the AdminService's lists: page sizes, and page tokens nobody can forge.

A page token names the list it belongs to and the position after which the next page
starts (a name, a kid or a sequence number), and carries an HMAC-SHA256 of both under a
key kept in the store (the setting :data:`PAGE_KEY_SETTING`, created on first use, so
every replica of a deployment accepts the tokens of the others). A token that was
changed, made up, or handed out by another list or another deployment is refused with
INVALID_ARGUMENT; the check is a constant-time comparison, made before anything in the
token is decoded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from bearer_grpc.core.errors import InvalidRequest
from bearer_grpc.store import Store

PAGE_KEY_SETTING: Final = "admin_page_key"
"""Stored setting holding the key that authenticates page tokens."""
DEFAULT_PAGE_SIZE: Final = 100
"""Items per page when a request asks for 0."""
MAX_PAGE_SIZE: Final = 1000
"""Most items one page may hold."""
MAX_PAGE_TOKEN: Final = 512
"""Longest page token accepted (the ones handed out are far shorter)."""
_MAC_BYTES: Final = 32
_BAD_TOKEN: Final = "invalid page_token"  # noqa: S105 (a message)

_T = TypeVar("_T")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Pages:
    """Cuts sorted lists into pages, handing out and checking page tokens.

    Args:
        key: The deployment's page-token key (at least 32 bytes).
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the page-token key must be at least 32 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "Pages(<key hidden>)"

    @classmethod
    def of_store(cls, store: Store) -> Pages:
        """The pages of a deployment, with the key in its store (created on first use)."""
        fresh = _b64(secrets.token_bytes(32))
        return cls(_unb64(store.get_or_create_setting(PAGE_KEY_SETTING, fresh)))

    @staticmethod
    def size(requested: int) -> int:
        """The page size for a request's ``page_size`` (0: the default).

        Raises:
            InvalidRequest: Negative or over :data:`MAX_PAGE_SIZE`.
        """
        if requested == 0:
            return DEFAULT_PAGE_SIZE
        if not 0 < requested <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"page_size must be 0..{MAX_PAGE_SIZE}")
        return requested

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest()

    def token(self, listing: str, position: str) -> str:
        """The page token of the page after ``position`` in the list ``listing``."""
        payload = _b64(json.dumps([listing, position], separators=(",", ":")).encode())
        return f"{payload}.{_b64(self._mac(payload))}"

    def position(self, listing: str, token: str) -> str | None:
        """Where the page of ``token`` starts (after it), or None for the first page.

        Raises:
            InvalidRequest: The token is oversized, malformed, forged or altered, or
                belongs to another list.
        """
        if not token:
            return None
        if len(token) > MAX_PAGE_TOKEN or not token.isascii():
            raise InvalidRequest(_BAD_TOKEN)
        payload, _, mac = token.partition(".")
        try:
            given = _unb64(mac)
        except (binascii.Error, ValueError) as err:
            raise InvalidRequest(_BAD_TOKEN) from err
        if len(given) != _MAC_BYTES or not hmac.compare_digest(given, self._mac(payload)):
            raise InvalidRequest(_BAD_TOKEN)
        try:
            named, position = json.loads(_unb64(payload))
        except (binascii.Error, ValueError, TypeError) as err:  # only our own tokens get here
            raise InvalidRequest(_BAD_TOKEN) from err
        if named != listing or not isinstance(position, str):
            raise InvalidRequest(_BAD_TOKEN)
        return position

    def cut(
        self,
        listing: str,
        items: Sequence[_T],
        position_of: Callable[[_T], str],
        *,
        page_size: int,
        page_token: str,
    ) -> tuple[list[_T], str]:
        """One page of ``items``, and the token of the next page ("" on the last one).

        The items are sorted by their positions, which are unique.

        Raises:
            InvalidRequest: A bad page size or page token.
        """
        size = self.size(page_size)
        after = self.position(listing, page_token)
        start = 0
        if after is not None:
            start = next(
                (i for i, item in enumerate(items) if position_of(item) > after), len(items)
            )
        page = list(items[start : start + size])
        more = start + size < len(items)
        return page, self.token(listing, position_of(page[-1])) if more and page else ""

    def below(self, listing: str, page_size: int, page_token: str) -> tuple[int, int]:
        """For a list read newest first by sequence: the page size, and where the page starts.

        The page starts below the sequence returned (0: from the newest).

        Raises:
            InvalidRequest: A bad page size or page token.
        """
        size = self.size(page_size)
        position = self.position(listing, page_token)
        if position is None:
            return size, 0
        if not (position.isascii() and position.isdigit()):
            raise InvalidRequest(_BAD_TOKEN)
        return size, int(position)

    def newest_first(
        self, listing: str, found: Sequence[_T], size: int, sequence: Callable[[_T], int]
    ) -> tuple[list[_T], str]:
        """The page of ``found`` and the next page's token ("" on the last page).

        ``found`` is read one item past the page, to know whether more follow.
        """
        page = list(found[:size])
        more = len(found) > size and bool(page)
        return page, self.token(listing, str(sequence(page[-1]))) if more else ""
