"""The ``/score`` contract: every accepted body shape in, predictions and probabilities out.

Accepted bodies (JSON unless noted): an array of records or of arrays in signature order;
``{"instances": [...]}`` (Vertex AI, KServe v1); MLflow's ``{"dataframe_split": ...}``,
``{"dataframe_records": [...]}`` and columnar ``{"inputs": {col: [...]}}``; ``text/csv`` with
or without a header row; JSON Lines; an Arrow IPC stream (``mlship.serving.codecs.arrow``).

Replies (``reply_format``): one probability record per row (the default), the columnar JSON
reply (``?format=columnar``: one list per class, no object per row), or Arrow
(``?format=arrow`` or ``Accept: application/vnd.apache.arrow.stream``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlship.scoring.columns import Columns
from mlship.scoring.predictor import ExtraColumns, Predictor
from mlship.scoring.problems import Code, InputError
from mlship.scoring.results import Prediction
from mlship.serving.codecs import arrow, cells, tabular

RECORDS, COLUMNAR, ARROW = "records", "columnar", "arrow"
FORMATS = (RECORDS, COLUMNAR, ARROW)
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
    if kind in arrow.MEDIA_TYPES:
        return arrow.decode(body, predictor, extra, on_ignored)
    if kind in tabular.CSV_TYPES:
        return tabular.csv_table(body, predictor, extra, on_ignored)
    if kind in tabular.JSON_LINES_TYPES:
        return tabular.json_lines(body, predictor, extra, on_ignored)
    if not tabular.is_json(kind):
        accepted = ["application/json", "text/csv", "application/jsonlines"]
        if arrow.available():
            accepted.append(arrow.MEDIA_TYPE)
        listed = ", ".join(accepted[:-1]) + f" or {accepted[-1]}"
        raise InputError.single(
            Code.unsupported_media_type, f"unsupported content type {kind!r}; send {listed}"
        )
    return document(tabular.load_json(body), predictor, extra, on_ignored)


def document(
    data: Any, predictor: Predictor, extra: ExtraColumns, on_ignored: tabular.OnIgnored = None
) -> Columns:
    """A decoded JSON document of any accepted shape, as raw columns."""
    if isinstance(data, dict):
        keys = [k for k in JSON_KEYS if k in data]
        if len(keys) != 1:
            raise tabular.malformed(_object_problem(data, keys, predictor))
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


def _object_problem(data: dict[Any, Any], keys: list[str], predictor: Predictor) -> str:
    """Why an object body has no single protocol key, with the likely fix: a lone record
    (its keys are feature names) needs wrapping in an array."""
    if keys:
        return f"a JSON object body needs exactly one of {', '.join(JSON_KEYS)}; got {keys}"
    features = {c.name for c in predictor.columns}
    if any(k in features for k in data):
        if all(isinstance(v, list | dict) for v in data.values()):  # pandas' to_dict()
            return (
                "body is one list or object per column; send lists as MLflow's columnar form, "
                '{"inputs": {"column": [...], ...}}, or an array of records '
                '(pandas: to_dict("list") or to_dict("records"))'
            )
        return (
            "body is a single record; send a JSON array of records, e.g. [{...}], "
            'or {"instances": [{...}]}'
        )
    names = sorted(map(str, data))
    shown = ", ".join(repr(n) for n in names[:10]) + (", ..." if len(names) > 10 else "")
    return (
        f"a JSON object body needs exactly one of {', '.join(JSON_KEYS)}; "
        f"got {len(names)} other key(s): {shown}"
    )


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
    values = cells.column_arrays(names, list(table.values()), tabular.numeric_names(predictor))
    return predictor.select(names, values, extra, on_ignored)


def encode(result: Prediction, predictor: Predictor) -> dict[str, Any]:
    """``{"predictions", "probabilities" (classifiers), "model": {name, version, run_id}}``."""
    reply: dict[str, Any] = {"predictions": result.predictions}
    probabilities = cells.probability_records(result.probabilities, result.classes)
    if probabilities is not None:
        reply["probabilities"] = probabilities
    info = predictor.info
    reply["model"] = {"name": info.name, "version": info.version, "run_id": info.run_id}
    return reply


def encode_columnar(result: Prediction, predictor: Predictor) -> dict[str, Any]:
    """``?format=columnar``: ``probabilities`` is ``{class: [p, ...]}``, one list per class in
    row order, written straight from the numpy matrix (no object per row)."""
    reply: dict[str, Any] = {"predictions": result.predictions}
    if result.probabilities is not None:
        by_class = np.ascontiguousarray(result.probabilities.T)
        reply["probabilities"] = dict(zip(result.classes, by_class, strict=True))
    info = predictor.info
    reply["model"] = {"name": info.name, "version": info.version, "run_id": info.run_id}
    return reply


def reply_format(query_format: str | None, accept: str | None) -> str:
    """``records``, ``columnar`` or ``arrow``: the ``format`` query parameter when given, else
    Arrow when ``Accept`` names it with no lower quality than JSON, else records.

    Other ``Accept`` values are not refused: ``/score`` has always answered JSON whatever the
    header said, and clients rely on that.
    """
    if query_format is not None:
        chosen = query_format.strip().lower()
        if chosen not in FORMATS:
            raise tabular.malformed(
                f"unknown reply format {query_format[:40]!r}; use one of {', '.join(FORMATS)}"
            )
    else:
        arrow_q, json_q = _qualities(accept)
        chosen = ARROW if arrow_q > 0 and arrow_q >= json_q else RECORDS
        if chosen == ARROW and json_q > 0 and not arrow.available():
            chosen = RECORDS  # Arrow preferred, JSON accepted: the JSON it accepts
    if chosen == ARROW and not arrow.available():
        raise InputError.single(Code.not_acceptable, f"Arrow replies: {arrow.WITHOUT}")
    return chosen


def _qualities(accept: str | None) -> tuple[float, float]:
    """The ``Accept`` header's quality for an Arrow stream and for JSON (0: not acceptable);
    without Arrow in the header, JSON as always."""
    if not accept or "arrow" not in accept:
        return 0.0, 1.0
    quality: dict[str, float] = {}
    for part in accept.split(","):
        kind = tabular.media_type(part)
        q = 1.0
        for param in part.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality.setdefault(kind, q)
    arrow_q = max(quality.get(m, 0.0) for m in arrow.MEDIA_TYPES)
    json_q = max(quality.get(m, 0.0) for m in ("application/json", "application/*", "*/*"))
    return arrow_q, json_q
