"""The scoring routes, answered without FastAPI's router.

FastAPI's routing (route matching, the exception and exit-stack middleware, dependency
solving for a handler that has no dependencies) cost about a fifth of a one-row request's
time in process (docs/benchmarks.md). A scoring handler takes the bare request and always
returns a complete response (``Service.score_with`` turns every failure into one), so none
of that machinery does anything for it. ``DirectRoutes`` sits inside our own middleware
(metrics, connection rule, API keys), which therefore sees these requests exactly as it sees
every other; anything that is not one of its (method, path) pairs goes on to FastAPI, which
also keeps the routes for ``/openapi.json``, 405s and slash redirects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mlship.serving.metrics import Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]


class DirectRoutes:
    """Pure ASGI middleware: ``(method, path)`` pairs answered by their handler directly."""

    def __init__(self, app: Any, routes: Iterable[tuple[str, str, Handler]]) -> None:
        self.app = app
        self.routes: dict[tuple[str, str], Handler] = {}
        for method, path, handler in routes:
            self.routes.setdefault((method, path), handler)  # the first match wins, as in FastAPI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.routes.get((scope["method"], scope["path"]))
            if handler is not None:
                response = await handler(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
