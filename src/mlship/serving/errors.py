"""One mapping from problem codes to HTTP status, and the JSON error body.

A reply's status is that of its most serious kind of problem: a body we cannot read at all
(400, 406, 413, 415) outranks rows that do not fit the model (422).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlship.scoring.problems import Code, InputError

log = logging.getLogger("mlship.serving")

STATUS: dict[Code, int] = {
    Code.unsupported_media_type: 415,
    Code.not_acceptable: 406,
    Code.too_large: 413,
    Code.malformed: 400,
    Code.no_rows: 400,
    Code.duplicate_column: 400,
    Code.row_shape: 422,
    Code.missing_column: 422,
    Code.unknown_column: 422,
    Code.not_a_number: 422,
    Code.not_a_category: 422,
    Code.out_of_range: 422,
    Code.null_not_allowed: 422,
}
_RANK = {415: 0, 406: 1, 413: 2, 400: 3, 422: 4}
MAX_DETAILS = 20  # problems listed in one reply; the summary line counts the rest


def status_of(error: InputError) -> int:
    return min((STATUS[p.code] for p in error.problems), key=_RANK.__getitem__)


def json_response(content: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )


def error_response(
    status: int,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    response = json_response({"error": message, "details": details or []}, status)
    response.headers.update(headers or {})
    return response


def input_error_response(error: InputError) -> Response:
    """``{"error": one line, "details": [{row, column, error}, ...]}`` with its status."""
    located = [p.as_dict() for p in error.problems if p.row is not None or p.column is not None]
    return error_response(status_of(error), error.message, located[:MAX_DETAILS])


def internal_error(exc: BaseException) -> Response:
    """A complete JSON 500 that closes its connection, whatever ``exc`` is or does: only its
    type name goes into the reply, and building it cannot fail (not even on a RecursionError)."""
    name = "Exception"
    try:
        name = type(exc).__name__
        log.error("unhandled error (%s) answered with 500", name, exc_info=exc)
    except Exception:  # pragma: no cover - logging itself failed; the reply still goes out
        pass
    body = orjson.dumps({"error": f"internal error: {name}", "details": []})
    return Response(body, 500, {"Connection": "close"}, media_type="application/json")


def error_handlers(app: FastAPI) -> None:
    """FastAPI's own errors (404, 405, a bad request) in our JSON shape; anything else a 500."""

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)  # 405: Allow

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
        return error_response(422, "invalid request", [{"error": str(e)} for e in exc.errors()])

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        return internal_error(exc)
