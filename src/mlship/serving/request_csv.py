"""The request log as CSV, for a service without pyarrow (the slim serving images).

Same columns, names (``.csv`` for ``.parquet``) and atomic writes as the Parquet log
(``mlship.serving.request_files``); only the cells are text:

- ``timestamp``: ISO 8601 UTC with microseconds (``2026-12-01T17:24:00.123456Z``);
- numbers (numeric features, probabilities, a regressor's prediction): the shortest text
  that reads back as the very same float64 (numpy's round-trip repr), so nothing is lost;
- categories: the text the model matched;
- a missing value (NaN, or the missing category ``""``): an empty cell, as Parquet's null.

Columns are built whole with numpy; only the csv module touches each cell, for quoting. The
writer needs numpy and the stdlib only (the ONNX image has no pandas).

``mlship.monitoring.logged`` reads them back, with the model's profile for the types.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from mlship.scoring.columns import to_categorical, to_numeric
from mlship.scoring.results import PREDICTION, PROBA_PREFIX

if TYPE_CHECKING:
    from mlship.scoring.predictor import Predictor
    from mlship.scoring.results import Prediction


class Entry(Protocol):
    """What ``request_files.Entry`` holds (named here so the two modules do not import each
    other): one scored request."""

    @property
    def time(self) -> float: ...
    @property
    def request_id(self) -> str: ...
    @property
    def route(self) -> str: ...
    @property
    def predictor(self) -> Predictor: ...
    @property
    def columns(self) -> dict[str, np.ndarray]: ...
    @property
    def result(self) -> Prediction: ...
    @property
    def rows(self) -> int: ...


Columns = dict[str, np.ndarray]  # column name -> text cells (object array of str)


def _number_text(values: np.ndarray) -> np.ndarray:
    """float64 cells as their round-trip text; NaN as an empty cell."""
    values = np.asarray(values, dtype=np.float64)
    text = values.astype(str).astype(object)
    text[np.isnan(values)] = ""
    return text


def _repeat(cells: list[str], counts: list[int]) -> np.ndarray:
    """Each request's value once per row it sent."""
    return np.repeat(np.asarray(cells, dtype=object), counts)


def csv_columns(entries: Sequence[Entry], names: list[tuple[str, str, bool]]) -> Columns:
    """The rows of ``entries`` (all for one model) as text columns.

    ``names``: per model input, its name in the log, its name in the request and whether
    it is numeric (``request_files.feature_names``).
    """
    info = entries[0].predictor.info
    counts = [e.rows for e in entries]
    rows = sum(counts)
    micros = np.array([int(e.time * 1e6) for e in entries], dtype="datetime64[us]")
    stamps = np.char.add(np.datetime_as_string(micros, unit="us"), "Z").astype(object)
    out: Columns = {
        "timestamp": np.repeat(stamps, counts),
        "request_id": _repeat([e.request_id for e in entries], counts),
        "model_name": np.full(rows, info.name, dtype=object),
        "model_version": np.full(rows, info.version, dtype=object),
        "route": _repeat([e.route for e in entries], counts),
    }
    for logged, name, numeric in names:
        raw = np.concatenate([e.columns[name] for e in entries])
        out[logged] = _number_text(to_numeric(raw)[0]) if numeric else to_categorical(raw)[0]
    first = entries[0].result
    predictions = np.concatenate([np.asarray(e.result.predictions) for e in entries])
    if first.probabilities is None:  # a regressor: numbers
        out[PREDICTION] = _number_text(predictions)
        return out
    out[PREDICTION] = predictions.astype(str).astype(object)
    proba = np.concatenate([e.result.probabilities for e in entries])
    for i, label in enumerate(first.classes):
        out[f"{PROBA_PREFIX}{label}"] = _number_text(proba[:, i])
    return out


def csv_bytes(chunks: list[Columns]) -> bytes:
    """The chunks (same columns, in order) as one CSV file with a header row."""
    header = list(chunks[0])
    columns = [np.concatenate([c[name] for c in chunks]) for name in header]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(zip(*(c.tolist() for c in columns), strict=True))
    return text.getvalue().encode()
