"""Decode a scoring request body into a table of rows for the predictor.

Accepted shapes (JSON unless noted):
- a bare array of records ``[{"col": v, ...}, ...]`` or of arrays in signature order;
- ``{"instances": [...]}`` (Vertex AI / KServe v1 / TF-serving), records or arrays;
- MLflow's ``{"dataframe_split": {"columns": [...], "data": [[...]]}}`` and
  ``{"dataframe_records": [...]}``;
- ``text/csv`` with a header row.

Only the shape is checked here; the predictor checks columns, types and values. Bodies
decode straight into per-column numpy arrays (no pandas), the form both runtimes take.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import orjson

from mlship.errors import InputError
from mlship.frame import text_cells
from mlship.predictor import Columns, Predictor

JSON_KEYS = ("instances", "dataframe_split", "dataframe_records")


class PayloadError(InputError):
    """The body is not one of the accepted shapes; ``status`` is the HTTP code to answer."""

    def __init__(
        self, message: str, status: int = 400, details: list[dict[str, Any]] | None = None
    ):
        super().__init__(message, details)
        self._status = status

    @property
    def status(self) -> int:
        return self._status


def media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";", 1)[0].strip().lower()


def decode(body: bytes, content_type: str | None, predictor: Predictor) -> Columns:
    """Turn a request body into raw (unvalidated) columns."""
    kind = media_type(content_type)
    if kind in ("text/csv", "application/csv"):
        return _csv(body, predictor)
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
    return rows_to_columns(data, predictor)


def rows_to_columns(data: Any, predictor: Predictor) -> Columns:
    """A decoded JSON document (any accepted shape) as raw columns."""
    if isinstance(data, dict):
        keys = [k for k in JSON_KEYS if k in data]
        if len(keys) != 1:
            raise PayloadError(
                f"a JSON object body needs exactly one of {', '.join(JSON_KEYS)}; "
                f"got keys {sorted(map(str, data))[:10]}"
            )
        key = keys[0]
        if key == "dataframe_split":
            return _split(data[key], predictor)
        data = data[key]
        if not isinstance(data, list):
            raise PayloadError(f"{key} must be an array")
    if not isinstance(data, list):
        raise PayloadError("body must be a JSON array of records or an object with 'instances'")
    if not data:
        raise InputError("no rows to score")
    if isinstance(data[0], dict):
        return predictor.columns_from_records(data)
    if isinstance(data[0], list):
        return predictor.columns_from_arrays(data)
    raise PayloadError(
        f"row 0: expected an object (record) or an array, got {type(data[0]).__name__}"
    )


def _split(split: Any, predictor: Predictor) -> Columns:
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list):
        raise PayloadError("dataframe_split needs 'columns' (array) and 'data' (array of arrays)")
    columns, rows = split["columns"], split.get("data")
    _check_names(columns, "dataframe_split.columns")
    if not isinstance(rows, list):
        raise PayloadError("dataframe_split.data must be an array of arrays")
    if not rows:
        raise InputError("no rows to score")
    bad = [i for i, row in enumerate(rows) if not isinstance(row, list) or len(row) != len(columns)]
    if bad:
        raise PayloadError(
            f"dataframe_split.data row {bad[0]}: expected {len(columns)} values",
            details=[{"row": i, "error": f"expected {len(columns)} values"} for i in bad[:20]],
        )
    count = len(rows)
    values = {
        str(name): np.fromiter((row[j] for row in rows), dtype=object, count=count)
        for j, name in enumerate(columns)
    }
    return predictor.columns_from_named(columns, values)


def _csv(body: bytes, predictor: Predictor) -> Columns:
    """CSV with a header row; cells stay text and the predictor coerces them."""
    try:
        reader = csv.reader(io.StringIO(body.decode("utf-8-sig")), strict=True)
        header = next(reader, None)
        rows = [row for row in reader if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise PayloadError(f"malformed CSV: {exc}") from None
    if not header:
        raise PayloadError("empty CSV body; send a header row and at least one data row")
    header = [name.strip() for name in header]
    _check_names(header, "CSV header")
    if not rows:
        raise InputError("no rows to score")
    bad = [i for i, row in enumerate(rows) if len(row) != len(header)]
    if bad:
        raise PayloadError(
            f"CSV row {bad[0]}: expected {len(header)} fields, got {len(rows[bad[0]])}",
            details=[{"row": i, "error": f"expected {len(header)} fields"} for i in bad[:20]],
        )
    count = len(rows)
    kinds = {c.name: c.kind for c in predictor.columns}
    values = {
        name: text_cells(
            np.fromiter((row[j] for row in rows), dtype=object, count=count),
            kinds.get(name, "categorical"),
        )
        for j, name in enumerate(header)
    }
    return predictor.columns_from_named(header, values)


def _check_names(names: list[Any], where: str) -> None:
    """Column names must be distinct strings: a repeated name would silently drop a column."""
    odd = [n for n in names if not isinstance(n, str)]
    if odd:
        raise PayloadError(f"{where}: column names must be strings, got {odd[0]!r}")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise PayloadError(f"{where}: duplicate column {name!r}")
        seen.add(name)
