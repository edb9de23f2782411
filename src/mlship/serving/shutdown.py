"""Draining: what the app does once shutdown has begun, and the 5xx connection rule.

``Drain`` is one flag per process, flipped by the server when SIGTERM arrives
(``mlship.serving.server``): from then on ``/ready`` answers 503 and every reply carries
``Connection: close``, so a client holding a keep-alive connection gets a complete answer
and then opens its next connection elsewhere. A 5xx reply always closes its connection: after
a server-side failure the connection is not worth keeping, and a client must not be left
writing into one the server is about to drop.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from mlship.serving.metrics import Receive, Scope, Send

CLOSE = (b"connection", b"close")


class Drain:
    """Whether this process is shutting down, and since when (``time.monotonic()``)."""

    def __init__(self) -> None:
        self.since: float | None = None

    @property
    def active(self) -> bool:
        return self.since is not None

    def begin(self) -> None:
        """Start draining (idempotent; safe to call from a signal handler)."""
        if self.since is None:
            self.since = time.monotonic()


PROCESS_DRAIN = Drain()  # the one the server flips; worker processes build their app with it


def closing(message: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """``message`` (a response start) with ``Connection: close`` added unless present."""
    headers = list(message.get("headers", ()))
    if not any(n.lower() == b"connection" and b"close" in v.lower() for n, v in headers):
        headers.append(CLOSE)
    return {**message, "headers": headers}


class CloseConnections:
    """Pure ASGI middleware: ``Connection: close`` on every 5xx, and on all while draining."""

    def __init__(self, app: Any, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def reply(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and (
                message["status"] >= 500 or self.drain.active
            ):
                message = closing(message)
            await send(message)

        await self.app(scope, receive, reply)
