"""Decode a scoring request body into a table of rows for the predictor.

Accepted shapes (JSON unless noted):
- a bare array of records ``[{"col": v, ...}, ...]`` or of arrays in signature order;
- ``{"instances": [...]}`` (Vertex AI / KServe v1 / TF-serving), records or arrays;
- MLflow's ``{"dataframe_split": {"columns": [...], "data": [[...]]}}`` and
  ``{"dataframe_records": [...]}``;
- ``text/csv`` with a header row.

Only the shape is checked here; the predictor checks columns, types and values.
"""

from __future__ import annotations

import io
from typing import Any

import orjson
import pandas as pd

from mlship.errors import InputError
from mlship.predictor import Predictor

JSON_KEYS = ("instances", "dataframe_split", "dataframe_records")


class PayloadError(InputError):
    """The body is not one of the accepted shapes; ``status`` is the HTTP code to answer."""

    def __init__(
        self, message: str, status: int = 400, details: list[dict[str, Any]] | None = None
    ):
        super().__init__(message, details)
        self.status = status


def media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";", 1)[0].strip().lower()


def decode(body: bytes, content_type: str | None, predictor: Predictor) -> pd.DataFrame:
    """Turn a request body into a DataFrame of raw (unvalidated) rows."""
    kind = media_type(content_type)
    if kind in ("text/csv", "application/csv"):
        return _csv(body)
    if kind not in ("application/json", "application/*+json", "*/*", "text/json") and not (
        kind.startswith("application/") and kind.endswith("+json")
    ):
        raise PayloadError(
            f"unsupported content type {kind!r}; send application/json or text/csv", 415
        )
    if not body.strip():
        raise PayloadError("empty body; send a JSON array of records")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"malformed JSON: {exc}") from None
    return rows_to_frame(data, predictor)


def rows_to_frame(data: Any, predictor: Predictor) -> pd.DataFrame:
    """A decoded JSON document (any accepted shape) as a DataFrame."""
    if isinstance(data, dict):
        keys = [k for k in JSON_KEYS if k in data]
        if len(keys) != 1:
            raise PayloadError(
                f"a JSON object body needs exactly one of {', '.join(JSON_KEYS)}; "
                f"got keys {sorted(map(str, data))[:10]}"
            )
        key = keys[0]
        if key == "dataframe_split":
            return _split(data[key])
        data = data[key]
        if not isinstance(data, list):
            raise PayloadError(f"{key} must be an array")
    if not isinstance(data, list):
        raise PayloadError("body must be a JSON array of records or an object with 'instances'")
    if not data:
        raise InputError("no rows to score")
    if isinstance(data[0], dict):
        return predictor.frame_from_records(data)
    if isinstance(data[0], list):
        return predictor.frame_from_arrays(data)
    raise PayloadError(
        f"row 0: expected an object (record) or an array, got {type(data[0]).__name__}"
    )


def _split(split: Any) -> pd.DataFrame:
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list):
        raise PayloadError("dataframe_split needs 'columns' (array) and 'data' (array of arrays)")
    columns, rows = split["columns"], split.get("data")
    if not isinstance(rows, list):
        raise PayloadError("dataframe_split.data must be an array of arrays")
    bad = [i for i, row in enumerate(rows) if not isinstance(row, list) or len(row) != len(columns)]
    if bad:
        raise PayloadError(
            f"dataframe_split.data row {bad[0]}: expected {len(columns)} values",
            details=[{"row": i, "error": f"expected {len(columns)} values"} for i in bad[:20]],
        )
    return pd.DataFrame(rows, columns=columns, dtype=object)


def _csv(body: bytes) -> pd.DataFrame:
    if not body.strip():
        raise PayloadError("empty CSV body; send a header row and at least one data row")
    try:
        return pd.read_csv(io.BytesIO(body))
    except (ValueError, pd.errors.ParserError) as exc:
        raise PayloadError(f"malformed CSV: {str(exc).splitlines()[0]}") from None
