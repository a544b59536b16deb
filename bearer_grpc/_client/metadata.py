"""What both client interceptors share: the ``authorization`` entry and the retry test."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.rpc import error_details_pb2

from bearer_grpc.core.wire import AUTHORIZATION, ERROR_DOMAIN, STALE_TOKEN_REASONS

Metadata = tuple[tuple[str, str | bytes], ...]


def with_bearer(metadata: Iterable[tuple[str, str | bytes]] | None, token: str) -> Metadata:
    """Call metadata with exactly one ``authorization: Bearer <token>`` entry.

    Every other entry is kept, in order; any ``authorization`` entry already there (in
    any letter case) is dropped, and the new one goes last.
    """
    kept = tuple(entry for entry in metadata or () if entry[0].lower() != AUTHORIZATION)
    return (*kept, (AUTHORIZATION, f"Bearer {token}"))


def is_stale_token(status: Any) -> bool:
    """True if a ``google.rpc.Status`` says the token expired or was revoked.

    That is, it carries an ``ErrorInfo`` of domain ``bearer-grpc`` with reason
    ``TOKEN_EXPIRED`` or ``TOKEN_REVOKED``. Both come from the server's authentication
    step, before any handler ran, so repeating the call cannot repeat its effects.
    """
    if status is None:
        return False
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain == ERROR_DOMAIN and info.reason in STALE_TOKEN_REASONS:
                return True
    return False
