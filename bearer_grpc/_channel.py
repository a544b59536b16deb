"""Channels to the TokenService, written once for the token sources and the verifiers.

- :class:`Endpoint`: where the TokenService is, with which credentials, and the
  reconnection bounds gRPC is given (one rule for rounding them).
- :class:`Connection` and :class:`ConnectionAio`: a channel and its TokenService stub
  that can be replaced by a fresh one when the link went silent.
- :func:`silent_link`: when a call's silence means its connection is dead.
- :class:`LinkLog`: the link going down and coming back, logged once per change.

Each endpoint opens channels on connections of its own (``use_local_subchannel_pool``):
gRPC otherwise shares connections between channels with the same arguments, and a
replacement channel could inherit the dead one.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any

import grpc

from bearer_grpc.core.backoff import Backoff
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc


@dataclass(frozen=True)
class Endpoint:
    """Where a TokenService is and how to reach it.

    Attributes:
        target: The address, ``host:port`` (any gRPC target).
        credentials: Channel credentials (TLS, mTLS); None for a plaintext channel.
        backoff: Bounds of the delays between reconnection attempts; gRPC's own
            reconnect backoff gets the same bounds.
    """

    target: str
    credentials: grpc.ChannelCredentials | None = field(default=None, repr=False)
    backoff: Backoff = field(default_factory=Backoff)

    def options(self) -> list[tuple[str, Any]]:
        """The gRPC channel arguments: reconnect no slower than :attr:`backoff` allows.

        The channel reconnects on connections of its own (a local subchannel pool).
        """
        return [
            ("grpc.initial_reconnect_backoff_ms", _milliseconds(self.backoff.initial)),
            ("grpc.max_reconnect_backoff_ms", _milliseconds(self.backoff.maximum)),
            ("grpc.use_local_subchannel_pool", 1),
        ]

    def open(self) -> grpc.Channel:
        """A new sync channel to the TokenService."""
        if self.credentials is None:
            return grpc.insecure_channel(self.target, options=self.options())
        return grpc.secure_channel(self.target, self.credentials, options=self.options())

    def open_aio(self) -> grpc.aio.Channel:
        """A new ``grpc.aio`` channel (call inside the event loop that will use it)."""
        if self.credentials is None:
            return grpc.aio.insecure_channel(self.target, options=self.options())
        return grpc.aio.secure_channel(self.target, self.credentials, options=self.options())


def _milliseconds(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class Connection:
    """A sync channel to the TokenService and its stub, replaceable from any thread.

    Args:
        endpoint: Where the TokenService is.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.closed = False
        self._lock = threading.Lock()  # guards closed and swapping the channel
        self._channel = endpoint.open()
        self.stub = pb_grpc.TokenServiceStub(self._channel)

    def replace(self) -> None:
        """Use a new channel (a new connection) from now on; close the old one.

        Nothing happens once :meth:`close` was called.
        """
        with self._lock:
            if self.closed:
                return
            old, self._channel = self._channel, self.endpoint.open()
            self.stub = pb_grpc.TokenServiceStub(self._channel)
        old.close()

    def close(self) -> None:
        """Close the channel, ending its calls (idempotent)."""
        with self._lock:
            self.closed = True
            channel = self._channel
        channel.close()


class ConnectionAio:
    """A ``grpc.aio`` channel to the TokenService and its stub, on one event loop.

    Args:
        endpoint: Where the TokenService is (the channel opens on the running loop).
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._channel = endpoint.open_aio()
        self.stub = pb_grpc.TokenServiceStub(self._channel)

    async def replace(self) -> None:
        """Use a new channel (a new connection) from now on; close the old one."""
        old, self._channel = self._channel, self.endpoint.open_aio()
        self.stub = pb_grpc.TokenServiceStub(self._channel)
        await old.close()

    async def close(self) -> None:
        """Close the channel, ending its calls (idempotent)."""
        await self._channel.close()


def status_of(error: BaseException) -> grpc.StatusCode | None:
    """The status code of a failed gRPC call (None for other errors)."""
    code = getattr(error, "code", None)  # grpc.Call errors; a bare RpcError has none
    status = code() if callable(code) else None
    return status if isinstance(status, grpc.StatusCode) else None


def silent_link(outcome: object, *, started: bool = False) -> bool:
    """Whether a call's outcome suggests its connection died silently.

    That is a partition, or a peer or middlebox that vanished without a reset: the call
    ran into its deadline without any answer (for a stream: before its initial metadata).

    gRPC keeps using such a connection until TCP gives up, which may take many minutes
    or never happen (no keepalive is assumed of the server): the caller replaces its
    :class:`Connection`, so the next attempt opens a new one.
    """
    return (
        isinstance(outcome, BaseException)
        and not started
        and status_of(outcome) == grpc.StatusCode.DEADLINE_EXCEEDED
    )


class LinkLog:
    """Logs the link to a key source going down and coming back, once per change.

    An outage is one warning, not one per reconnection attempt.

    Args:
        log: Where to log.
        target: The source's address, for the log records.
        what: What the source is, for the messages.
    """

    def __init__(self, log: logging.Logger, target: str, what: str = "TokenService") -> None:
        self._log = log
        self._target = target
        self._what = what
        self._up = True

    def up(self) -> None:
        """The source answered."""
        if not self._up:
            self._up = True
            self._log.info("%s reachable again", self._what, extra={"target": self._target})

    def down(self, error: BaseException) -> None:
        """A call to the source failed."""
        if self._up:
            self._up = False
            self._log.warning(
                "%s unreachable: retrying with backoff",
                self._what,
                extra={"target": self._target, "error": _describe(error)},
            )

    def bad_keys(self, error: Exception) -> None:
        """The source answered with a key set that fails hygiene (kept the old one)."""
        self._log.warning(
            "%s published an unusable key set: keeping the last known good",
            self._what,
            extra={"target": self._target, "error": str(error)},
        )


def _describe(error: BaseException) -> str:
    status = status_of(error)
    return status.name if status is not None else type(error).__name__
