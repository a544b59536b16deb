"""What only the HTTP face's tests share: form requests and captured log lines; the running
service is ``tests.harness.http_service``."""

from __future__ import annotations

import base64
import logging

FORM = "application/x-www-form-urlencoded"


def basic(client_id: str, secret: str) -> str:
    """A raw (not form-encoded) Basic header value."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


class Captured(logging.Handler):
    """Collects the formatted lines of bearer_grpc's loggers (JSON, as served)."""

    def __init__(self) -> None:
        from bearer_grpc.service.log_format import JsonFormatter

        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        """Every line so far."""
        return "\n".join(self.lines)
