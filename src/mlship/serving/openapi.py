"""The service's OpenAPI 3.1 document, written from the served model's signature.

FastAPI can describe only what a handler's parameters declare, and ours take the raw request
(each codec reads the body itself), so FastAPI's own document had no request bodies and only
a 200. This one is built by hand from the route list: every request shape as a named schema
(``mlship.serving.openapi_schemas``), every status a route can answer with its error schema,
the Prometheus text of ``/metrics``, and the Open Inference Protocol, KServe v1, SageMaker and
Vertex routes the server has. ``create_app`` caches it once the model has loaded; while it
loads, the shapes are untyped and nothing is cached.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from mlship import __version__
from mlship.scoring.predictor import Predictor
from mlship.serving.codecs import arrow
from mlship.serving.loader import ModelHolder
from mlship.serving.openapi_protocols import metadata_schema, oip_schemas
from mlship.serving.openapi_replies import reply_schemas
from mlship.serving.openapi_schemas import ROWS_FROM, Schema, Signature, ref, request_schemas
from mlship.serving.settings import ServeSettings

JSON = "application/json"
SCORING_ERRORS = (400, 413, 415, 422, 500, 503)
SCORE_ERRORS = (*SCORING_ERRORS, 406)  # /score: ?format=arrow without pyarrow
REASONS = {
    400: "The body cannot be read (malformed JSON or CSV, no rows, a duplicate column).",
    401: "No API key (send Authorization: Bearer <key> or X-API-Key).",
    403: "API key not accepted.",
    404: "No such model (name or version) here.",
    413: "Body or row count over the limit (GET /metadata, limits).",
    406: "No reply format the Accept header allows (text/csv, application/json, "
    "application/jsonlines), or an Arrow reply from a server without pyarrow.",
    415: "Unsupported Content-Type or Content-Encoding.",
    422: f"Rows that do not fit the model, each by row (from {ROWS_FROM}) and column.",
    500: "A bug of ours: a complete JSON reply, and the connection closes.",
    503: "The model is loading, failed to load, or the server is shutting down.",
}
SCORE_TYPES = {
    JSON: "ScoreRequest",
    "text/csv": "CsvBody",
    "application/jsonlines": "JsonLinesBody",
}
ARROW_BODY = "Arrow IPC stream (application/vnd.apache.arrow.stream)"
FORMAT_PARAMETER: Schema = {
    "name": "format",
    "in": "query",
    "required": False,
    "description": "The reply: records (default: one probability object per row), columnar "
    "(probabilities as one list per class) or arrow (an Arrow IPC stream: prediction, "
    "proba_<class>; also chosen by Accept: application/vnd.apache.arrow.stream). Arrow needs "
    "pyarrow on the server (GET /metadata: protocols.native.arrow); without it, 406.",
    "schema": {"type": "string", "enum": ["records", "columnar", "arrow"], "default": "records"},
}


def _score_op() -> Op:
    """``/score``: the JSON, CSV and JSON Lines bodies, and Arrow where pyarrow is installed."""
    types: dict[str, str] = dict(SCORE_TYPES)
    ok: dict[str, Schema] = {JSON: {"anyOf": [ref("ScoreReply"), ref("ScoreColumnarReply")]}}
    if arrow.available():
        types[arrow.MEDIA_TYPE] = "ArrowBody"
        ok[arrow.MEDIA_TYPE] = {"type": "string", "format": "binary", "description": ARROW_BODY}
    return Op("score", NATIVE, ok, body(types), SCORE_ERRORS, query=[FORMAT_PARAMETER])


def body(schemas: dict[str, str]) -> Schema:
    """A required request body: media type -> component name."""
    return {"required": True, "content": {k: {"schema": ref(v)} for k, v in schemas.items()}}


@dataclass(frozen=True)
class Op:
    """One operation: its id, tag, request body, replies and the errors it may answer."""

    op_id: str
    tag: str
    ok: dict[str, Schema]  # media type -> schema of the 200 reply
    request: Schema | None = None
    errors: tuple[int, ...] = ()
    error_schema: str = "Error"
    replies: dict[int, tuple[str, str]] = field(default_factory=dict)  # status -> (schema, why)
    query: list[Schema] = field(default_factory=list)  # query parameters


def _json(name: str) -> dict[str, Schema]:
    return {JSON: ref(name)}


def _scoring(op_id: str, tag: str, reply: str, types: dict[str, str]) -> Op:
    return Op(op_id, tag, _json(reply), body(types), SCORING_ERRORS)


def _oip(op_id: str, ok: str, request: Schema | None = None, errors: Iterable[int] = ()) -> Op:
    return Op(
        op_id, "Open Inference Protocol", _json(ok), request, (404, 503, *errors), "ErrorMessage"
    )


NATIVE, KSERVE, OPS_TAG = "Scoring", "KServe v1", "Operations"
READY = Op("readiness", OPS_TAG, _json("Status"), errors=(503,))
OPS: dict[str, Op] = {
    "/score": _score_op(),
    "/health": Op("liveness", OPS_TAG, _json("Status")),
    "/ready": READY,
    "/metadata": Op("metadata", NATIVE, _json("Metadata"), errors=(503,)),
    "/metrics": Op(
        "metrics",
        OPS_TAG,
        {"text/plain": {"type": "string", "description": "Prometheus text exposition format."}},
    ),
    "/": Op("kserve_v1_live", KSERVE, _json("Status")),
    "/v1/models/{name}": Op(
        "kserve_v1_model_status",
        KSERVE,
        _json("V1ModelStatus"),
        errors=(404,),
        error_schema="ErrorMessage",
        replies={503: ("V1ModelStatus", "Not ready.")},
    ),
    "/v1/models/{name}:predict": Op(
        "kserve_v1_predict",
        KSERVE,
        _json("V1PredictReply"),
        body({JSON: "InstancesRequest"}),
        SCORING_ERRORS,
        replies={404: ("ErrorMessage", REASONS[404])},
    ),
    "/v2": _oip("oip_server_metadata", "OipServerMetadata"),
    "/v2/health/live": Op("oip_server_live", "Open Inference Protocol", _json("OipLive")),
    "/v2/health/ready": Op(
        "oip_server_ready",
        "Open Inference Protocol",
        _json("OipReady"),
        replies={503: ("OipReady", "Not ready.")},
    ),
    "/ping": Op("sagemaker_ping", "SageMaker", _json("Status"), errors=(503,)),
    "/invocations": Op(
        "sagemaker_invocations",
        "SageMaker",
        {
            JSON: ref("ScoreReply"),
            "text/csv": {"type": "string"},
            "application/jsonlines": {"type": "string"},
        },
        body(SCORE_TYPES),
        (*SCORING_ERRORS, 406),
    ),
}
for _base, _suffix in (("/v2/models/{name}", ""), ("/v2/models/{name}/versions/{version}", "_v")):
    OPS[_base] = _oip(f"oip_model_metadata{_suffix}", "OipModelMetadata")
    OPS[f"{_base}/ready"] = _oip(f"oip_model_ready{_suffix}", "OipModelReady")
    OPS[f"{_base}/infer"] = _oip(
        f"oip_infer{_suffix}",
        "InferenceReply",
        body({JSON: "InferenceRequest"}),
        (400, 413, 415, 500),
    )


def op_for(path: str, settings: ServeSettings) -> Op:
    """The operation a route is; Vertex's routes are wherever its variables put them."""
    if path == settings.vertex_predict_route:
        return _scoring("vertex_predict", "Vertex AI", "VertexReply", SCORE_TYPES)
    if settings.vertex_predict_route and path == settings.health_route:
        return Op("vertex_health", "Vertex AI", _json("Status"), errors=(503,))
    return OPS.get(path) or Op(re.sub(r"\W+", "_", path).strip("_") or "root", OPS_TAG, {})


def _reply(why: str, content: dict[str, Schema]) -> Schema:
    return {"description": why, "content": {k: {"schema": v} for k, v in content.items()}}


def operation(path: str, summary: str, op: Op, secured: bool, keys: bool = False) -> Schema:
    """The OpenAPI operation object: parameters, body, and a reply per status.

    ``secured``: the route needs an API key; with ``keys`` but not ``secured``, a probe left
    open, which says so (``security: []``) over the document-wide requirement.
    """
    statuses = {s: (op.error_schema, REASONS[s]) for s in op.errors} | op.replies
    if secured:
        statuses |= {401: ("Error", REASONS[401]), 403: ("Error", REASONS[403])}
    responses: Schema = {"200": _reply("OK", op.ok) if op.ok else {"description": "OK"}}
    for status in sorted(statuses):
        name, why = statuses[status]
        responses[str(status)] = _reply(why, _json(name))
    out: Schema = {
        "operationId": op.op_id,
        "tags": [op.tag],
        "summary": summary or op.op_id.replace("_", " "),
        "responses": responses,
    }
    params = re.findall(r"{(\w+)}", path)
    if params or op.query:
        out["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in params
        ] + op.query
    if op.request is not None:
        out["requestBody"] = op.request
    if keys and not secured:
        out["security"] = []
    return out


def _description(sig: Signature) -> str:
    return (
        "Scores rows with a model trained by mlship. POST rows to /score: records, arrays, "
        "instances, inputs, dataframe_split/records (JSON), CSV or JSON Lines; gzip bodies "
        "with Content-Encoding: gzip.\n\n"
        f"**Column order** (array rows, headerless CSV, [n, k] tensors): {sig.order()}\n\n"
        f"**Error rows** are counted from {ROWS_FROM}: row {ROWS_FROM} is the body's first "
        "row (a CSV's first data line), as in batch and Spark rejected-rows output."
    )


def document(
    predictor: Predictor | None,
    settings: ServeSettings,
    routes: Iterable[tuple[str, str, str]],
    open_paths: set[str],
) -> dict[str, Any]:
    """The whole document for ``routes`` (path, method, summary); the first of a path wins."""
    sig = Signature.of(predictor, settings.extra_columns, settings.max_rows)
    keys = settings.api_keys_file is not None
    paths: dict[str, dict[str, Schema]] = {}
    for path, method, summary in routes:
        methods = paths.setdefault(path, {})
        verb = method.lower()
        if verb not in methods:
            secured = keys and path not in open_paths
            methods[verb] = operation(path, summary, op_for(path, settings), secured, keys)
    components: Schema = {
        "schemas": {
            **request_schemas(sig),
            **reply_schemas(sig),
            **oip_schemas(sig),
            "Metadata": metadata_schema(),
        }
    }
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "mlship scoring service",
            "version": __version__,
            "description": _description(sig),
        },
        "paths": paths,
        "components": components,
    }
    if keys:
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        doc["security"] = [{"bearer": []}, {"apiKey": []}]
    return doc


def typed_openapi(
    app: FastAPI,
    holder: ModelHolder,
    settings: ServeSettings,
    routes: list[tuple[str, str, str]],
    open_paths: set[str],
) -> None:
    """Serve this document as ``/openapi.json`` (and ``/docs``) instead of FastAPI's own.

    Built once the model has loaded and cached from then on; while it loads, an untyped
    document is served and not kept, so the typed one follows as soon as it can.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            predictor = holder.predictor
            built = document(predictor, settings, routes, open_paths)
            if predictor is None:
                return built
            app.openapi_schema = built
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
