"""The replies' component schemas: ``/score``'s with the class names typed, Vertex's, KServe
v1's, and the one error body every non-OIP route answers with.

A classifier's ``predictions`` are an ``enum`` of its classes and each probability record has
one required property per class, so a generated client reads them as named fields; a
regressor's predictions are numbers.
"""

from __future__ import annotations

from typing import Any

from mlship.serving.errors import MAX_DETAILS
from mlship.serving.openapi_schemas import ROWS_FROM, Schema, Signature, ref


def _label(sig: Signature) -> Schema:
    if sig.classifier:
        return {"type": "string", "enum": sig.classes, "description": "The predicted class."}
    if not sig.known:
        return {"description": "A class name (classifier) or a number (regressor)."}
    return {"type": "number", "description": "The predicted value."}


def _probabilities(sig: Signature) -> Schema:
    if not sig.classifier:
        return {"type": "object", "additionalProperties": {"type": "number"}}
    p = {"type": "number", "minimum": 0, "maximum": 1}
    return {
        "type": "object",
        "description": f"One probability per class ({', '.join(sig.classes)}); they sum to 1.",
        "properties": {c: p for c in sig.classes},
        "required": sig.classes,
        "additionalProperties": False,
    }


def _obj(properties: dict[str, Schema], required: list[str] | None = None, **more: Any) -> Schema:
    required = list(properties) if required is None else required
    return {"type": "object", "properties": properties, "required": required, **more}


def reply_schemas(sig: Signature) -> dict[str, Schema]:
    """The replies: ``/score``'s (class names typed), Vertex's and KServe v1's, and errors."""
    text: Schema = {"type": "string"}
    rows: dict[str, Schema] = {
        "row": {
            "type": "integer",
            "minimum": ROWS_FROM,
            "description": f"The row, counted from {ROWS_FROM} in the body's order.",
        },
        "column": text,
        "error": text,
    }
    predictions = {"type": "array", "items": ref("Label"), "description": "One per row, in order."}
    probabilities = {"type": "array", "items": ref("ClassProbabilities")}
    score = {
        "predictions": predictions,
        "probabilities": probabilities,
        "model": ref("ModelIdentity"),
    }
    required = ["predictions", "model", *(["probabilities"] if sig.classifier else [])]
    by_class: Schema = {
        "type": "object",
        "description": "?format=columnar: one list of probabilities per class, in row order.",
        "properties": {c: {"type": "array", "items": {"type": "number"}} for c in sig.classes},
        "additionalProperties": {"type": "array", "items": {"type": "number"}},
    }
    columnar = {**score, "probabilities": by_class}
    v1 = {"predictions": predictions, "probabilities": probabilities}
    vertex_item = ref("VertexClassPrediction") if sig.classifier else ref("Label")
    return {
        "Label": _label(sig),
        "ClassProbabilities": _probabilities(sig),
        "ModelIdentity": _obj({"name": text, "version": text, "run_id": text}),
        "ScoreReply": _obj(score, required, additionalProperties=False),
        "ScoreColumnarReply": _obj(columnar, required, additionalProperties=False),
        "V1PredictReply": _obj(v1, required[:1] + required[2:], additionalProperties=False),
        "V1ModelStatus": _obj({"name": text, "ready": {"type": "boolean"}}),
        "VertexClassPrediction": _obj(
            {"label": ref("Label"), "probabilities": ref("ClassProbabilities")}
        ),
        "VertexReply": _obj({"predictions": {"type": "array", "items": vertex_item}}),
        "Status": _obj({"status": text}),
        "ErrorDetail": _obj(rows, ["error"], additionalProperties=False),
        "Error": _obj(
            {
                "error": {"type": "string", "minLength": 1},
                "details": {
                    "type": "array",
                    "items": ref("ErrorDetail"),
                    "description": f"Up to {MAX_DETAILS} problems; rows counted from {ROWS_FROM}.",
                },
            },
            additionalProperties=False,
            description="Every non-OIP error: one line, and the problems by row and column.",
        ),
    }
