"""``with`` and ``async with`` for objects that hold connections: leaving the block closes.

Verifiers and token sources own channels and background work; each defines ``close`` (or
``aclose`` on asyncio) and inherits the context-manager methods from here instead of
writing them again.
"""

from __future__ import annotations

from typing import Self


class Closing:
    """``with obj:`` returns ``obj`` and calls ``obj.close()`` when the block ends."""

    def close(self) -> None:
        """Release what the object holds; called once the ``with`` block ends."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ClosingAio:
    """``async with obj:`` returns ``obj`` and awaits ``obj.aclose()`` when the block ends."""

    async def aclose(self) -> None:
        """Release what the object holds and wait for its background work to end."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
