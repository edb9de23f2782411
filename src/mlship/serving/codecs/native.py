"""The ``/score`` contract: every accepted body shape in, predictions and probabilities out.

Accepted bodies (JSON unless noted): an array of records or of arrays in signature order;
``{"instances": [...]}`` (Vertex AI, KServe v1); MLflow's ``{"dataframe_split": ...}`` and
``{"dataframe_records": [...]}``; ``text/csv`` with a header row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlship.scoring.columns import Columns
from mlship.scoring.predictor import ExtraColumns, Predictor
from mlship.scoring.problems import Code, InputError
from mlship.scoring.results import Prediction
from mlship.serving.codecs import tabular

JSON_KEYS = ("instances", "dataframe_split", "dataframe_records", "inputs")
# Keys allowed beside the one above, and ignored: Vertex/KServe "parameters", MLflow "params".
SIDE_KEYS = ("parameters", "params")


def decode(
    body: bytes,
    content_type: str | None,
    predictor: Predictor,
    extra: ExtraColumns,
    on_ignored: tabular.OnIgnored = None,
) -> Columns:
    """Turn a request body into raw (unvalidated) columns.

    ``on_ignored`` hears the names of unknown columns that ``extra="ignore"`` let through.
    """
    kind = tabular.media_type(content_type)
    if kind in tabular.CSV_TYPES:
        return tabular.csv_table(body, predictor, extra, on_ignored)
    if kind in tabular.JSON_LINES_TYPES:
        return tabular.json_lines(body, predictor, extra, on_ignored)
    if not tabular.is_json(kind):
        raise InputError.single(
            Code.unsupported_media_type,
            f"unsupported content type {kind!r}; send application/json, text/csv or "
            "application/jsonlines",
        )
    return document(tabular.load_json(body), predictor, extra, on_ignored)


def document(
    data: Any, predictor: Predictor, extra: ExtraColumns, on_ignored: tabular.OnIgnored = None
) -> Columns:
    """A decoded JSON document of any accepted shape, as raw columns."""
    if isinstance(data, dict):
        keys = [k for k in JSON_KEYS if k in data]
        if len(keys) != 1:
            raise tabular.malformed(
                f"a JSON object body needs exactly one of {', '.join(JSON_KEYS)}; "
                f"got keys {sorted(map(str, data))[:10]}"
            )
        key = keys[0]
        others = sorted(str(k) for k in data if k != key and k not in SIDE_KEYS)
        if others:
            raise tabular.malformed(f"unknown key {others[0]!r} beside {key!r}")
        for side in SIDE_KEYS:
            if not isinstance(data.get(side, {}), dict):
                raise tabular.malformed(f"{side!r} must be an object")
        if key == "dataframe_split":
            return tabular.split(data[key], predictor, extra, on_ignored)
        if key == "inputs" and isinstance(data[key], dict):  # MLflow's columnar form
            return _columnar(data[key], predictor, extra, on_ignored)
        data = data[key]
        if not isinstance(data, list):
            raise tabular.malformed(f"{key} must be an array")
    if not isinstance(data, list):
        raise tabular.malformed(
            "body must be a JSON array of records or an object with 'instances'"
        )
    return tabular.rows(data, predictor, extra, on_ignored)


def _columnar(
    table: dict[str, Any], predictor: Predictor, extra: ExtraColumns, on_ignored: tabular.OnIgnored
) -> Columns:
    """``{"inputs": {"col": [v, ...], ...}}``: one list per column, all the same length."""
    names = list(table)
    tabular.check_names(names, "inputs")
    lengths = {len(v) if isinstance(v, list) else -1 for v in table.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise tabular.malformed("inputs: every column must be a list, all of the same length")
    if lengths == {0}:
        raise tabular.no_rows()
    values = {}
    for name, column in table.items():
        array = np.empty(len(column), dtype=object)
        array[:] = column
        values[name] = array
    return predictor.select(names, values, extra, on_ignored)


def encode(result: Prediction, predictor: Predictor) -> dict[str, Any]:
    """``{"predictions", "probabilities" (classifiers), "model": {name, version, run_id}}``."""
    reply: dict[str, Any] = {"predictions": result.predictions}
    probabilities = result.probability_records()
    if probabilities is not None:
        reply["probabilities"] = probabilities
    info = predictor.info
    reply["model"] = {"name": info.name, "version": info.version, "run_id": info.run_id}
    return reply
