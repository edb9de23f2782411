"""``DirectRoutes``: its (method, path) pairs answered by their handler, the rest by the app."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from mlship.serving.direct import DirectRoutes, Handler


async def routed(_: Request) -> Response:
    return PlainTextResponse("router")


def answer(text: str) -> Handler:
    async def handler(request: Request) -> Response:
        body = await request.body()
        return PlainTextResponse(f"{text}:{request.url.path}:{body.decode()}")

    return handler


def client() -> TestClient:
    inner = Starlette(routes=[Route("/score", routed, methods=["GET", "POST"])])
    routes = [("POST", "/score", answer("first")), ("POST", "/score", answer("second"))]
    return TestClient(DirectRoutes(inner, routes))


def test_pairs_go_to_their_handler_with_the_body_and_the_first_match_wins() -> None:
    reply = client().post("/score", content=b"rows")
    assert reply.status_code == 200 and reply.text == "first:/score:rows"


def test_other_methods_and_paths_reach_the_app() -> None:
    with client() as c:
        assert c.get("/score").text == "router"
        assert c.post("/elsewhere").status_code == 404
