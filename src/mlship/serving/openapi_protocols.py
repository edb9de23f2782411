"""The platforms' side of the API description: Open Inference Protocol schemas, and where each
platform's routes are for this model (``GET /metadata``'s ``protocols``).

The OIP tensors are generic by the protocol's design (a tensor's ``data`` may be flat or
nested); what the model wants in them is said in the descriptions, and typed per column by
``GET /v2/models/{name}``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from mlship.scoring.predictor import Predictor
from mlship.serving.codecs import arrow, native
from mlship.serving.codecs.oip import DATATYPES, LABEL, PROBABILITIES
from mlship.serving.openapi_schemas import ROWS_FROM, Schema, Signature, ref
from mlship.serving.settings import ServeSettings

TEXT: Schema = {"type": "string"}
SHAPE: Schema = {"type": "array", "items": {"type": "integer", "minimum": -1}, "minItems": 1}


def _tensor(description: str, data: Schema, outputs: bool = False) -> Schema:
    properties: dict[str, Schema] = {
        "name": {"type": "string", "enum": [LABEL, PROBABILITIES]} if outputs else TEXT,
        "shape": SHAPE,
        "datatype": {"type": "string", "enum": sorted(DATATYPES)},
        "data": data,
        "parameters": {"type": "object"},
    }
    required = ["name", "shape", "datatype", "data"]
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": required,
    }


def oip_schemas(sig: Signature) -> dict[str, Schema]:
    """The Open Inference Protocol's request, reply, metadata and error."""
    per_column = ", ".join(
        f"{c.name} ({'FP64' if c.kind == 'numeric' else 'BYTES'})" for c in sig.columns
    )
    described = (
        "Either one tensor per model column, shape [n] (MLServer's pd content type): "
        f"{per_column or 'see GET /v2/models/{name}'}; or one [n, k] tensor, any name, "
        f"columns in signature order (Triton FIL). {sig.order()}"
    )
    anything: Schema = {
        "type": "array",
        "items": {},
        "description": "Row-major values, flat or nested.",
    }
    metadata_tensor = {
        "type": "object",
        "properties": {
            "name": TEXT,
            "datatype": TEXT,
            "shape": SHAPE,
            "parameters": {"type": "object"},
        },
        "required": ["name", "datatype", "shape"],
    }
    return {
        "OipInput": _tensor(described, anything),
        "OipRequestedOutput": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "enum": [LABEL, PROBABILITIES]},
                "parameters": {"type": "object"},
            },
        },
        "InferenceRequest": {
            "type": "object",
            "description": described,
            "properties": {
                "id": TEXT,
                "inputs": {"type": "array", "items": ref("OipInput"), "minItems": 1},
                "outputs": {"type": "array", "items": ref("OipRequestedOutput")},
                "parameters": {"type": "object"},
            },
            "required": ["inputs"],
        },
        "OipOutput": _tensor(
            f"'{LABEL}' (BYTES class names, or FP64 values), '{PROBABILITIES}' (FP64 [n, "
            "classes], the class names in parameters.classes).",
            anything,
            outputs=True,
        ),
        "InferenceReply": {
            "type": "object",
            "properties": {
                "model_name": TEXT,
                "model_version": TEXT,
                "id": TEXT,
                "outputs": {"type": "array", "items": ref("OipOutput")},
            },
            "required": ["model_name", "model_version", "outputs"],
        },
        "ErrorMessage": {
            "type": "object",
            "properties": {"error": TEXT},
            "required": ["error"],
            "description": "The protocol's error: one line (a 413 adds details).",
        },
        "OipServerMetadata": {
            "type": "object",
            "properties": {
                "name": TEXT,
                "version": TEXT,
                "extensions": {"type": "array", "items": TEXT},
            },
            "required": ["name", "version", "extensions"],
        },
        "OipTensorMetadata": metadata_tensor,
        "OipModelMetadata": {
            "type": "object",
            "description": "One input per model column, in signature order.",
            "properties": {
                "name": TEXT,
                "platform": TEXT,
                "versions": {"type": "array", "items": TEXT},
                "inputs": {"type": "array", "items": ref("OipTensorMetadata")},
                "outputs": {"type": "array", "items": ref("OipTensorMetadata")},
            },
            "required": ["name", "platform", "inputs", "outputs"],
        },
        "OipLive": {
            "type": "object",
            "properties": {"live": {"type": "boolean"}},
            "required": ["live"],
        },
        "OipReady": {
            "type": "object",
            "properties": {"ready": {"type": "boolean"}},
            "required": ["ready"],
        },
        "OipModelReady": {
            "type": "object",
            "properties": {"name": TEXT, "ready": {"type": "boolean"}},
            "required": ["name", "ready"],
        },
    }


def metadata_schema() -> Schema:
    """``GET /metadata``: the model's facts, its signature and where each platform calls."""
    column = {
        "type": "object",
        "properties": {"name": TEXT, "type": TEXT, "nullable": {"type": "boolean"}},
        "required": ["name", "type", "nullable"],
    }
    return {
        "type": "object",
        "description": "Model identity, training facts, the signature (in column order) and "
        "the routes of every protocol the server speaks.",
        "properties": {
            "name": TEXT,
            "version": TEXT,
            "run_id": TEXT,
            "task": TEXT,
            "classes": {"type": "array", "items": TEXT},
            "positive_class": {
                "type": ["string", "null"],
                "description": "Binary classifiers: the class decision_threshold is on.",
            },
            "decision_threshold": {
                "type": ["number", "null"],
                "exclusiveMinimum": 0,
                "exclusiveMaximum": 1,
                "description": "Binary classifiers: a row is positive_class iff its probability "
                "is >= this (0.5 under argmax); null for other models.",
            },
            "decision_rule": {
                "type": "string",
                "enum": ["argmax", "threshold"],
                "description": "argmax: the most probable class (ties to the first); "
                "threshold: the rule above.",
            },
            "signature": {"type": "array", "items": column},
            "column_order": {"type": "array", "items": TEXT},
            "error_rows_start_at": {"type": "integer", "enum": [ROWS_FROM]},
            "runtime": TEXT,
            "limits": {"type": "object"},
            "protocols": {"type": "object"},
        },
        "required": [
            "name",
            "version",
            "run_id",
            "task",
            "signature",
            "column_order",
            "error_rows_start_at",
            "protocols",
        ],
    }


def protocol_routes(predictor: Predictor, settings: ServeSettings) -> dict[str, Any]:
    """Where each platform's client calls for this model, for ``GET /metadata``.

    A client that speaks one protocol wants its URLs spelled out with this model's name and
    version rather than templates; routes a platform does not have here are ``None``.
    """
    info = predictor.info
    name, version = quote(info.name, safe=""), quote(info.version, safe="")
    model = f"/v2/models/{name}"
    versioned = f"{model}/versions/{version}"
    vertex = settings.vertex_predict_route
    return {
        "native": {
            "score": "/score",
            "health": "/health",
            "ready": "/ready",
            "metrics": "/metrics",
            "openapi": "/openapi.json",
            "docs": "/docs" if settings.docs else None,
            "reply_formats": [f for f in native.FORMATS if f != native.ARROW or arrow.available()],
            "arrow": arrow.available(),  # Arrow IPC bodies and replies (needs pyarrow)
        },
        "open_inference": {
            "model_name": info.name,
            "model_version": info.version,
            "server_metadata": "/v2",
            "server_live": "/v2/health/live",
            "server_ready": "/v2/health/ready",
            "model_metadata": model,
            "model_ready": f"{model}/ready",
            "infer": f"{model}/infer",
            "versioned_infer": f"{versioned}/infer",
        },
        "kserve_v1": {
            "model_name": info.name,
            "live": "/",
            "model_status": f"/v1/models/{name}",
            "predict": f"/v1/models/{name}:predict",
        },
        "sagemaker": {"invocations": "/invocations", "ping": "/ping"}
        if settings.sagemaker
        else None,
        "vertex": {"predict": vertex, "health": settings.health_route} if vertex else None,
    }
