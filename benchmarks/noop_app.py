"""The HTTP ceiling for the serving benchmark: same stack as ``mlship serve``, no model.

It reads the body and parses it with orjson (as the real service does), then returns a
constant. It lives here, never in the product.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()
REPLY = orjson.dumps({"predictions": ["CH"]})


@app.post("/score")
async def score(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(REPLY, media_type="application/json")


@app.get("/ready")
async def ready() -> Response:
    return Response(b'{"status":"ready"}', media_type="application/json")
