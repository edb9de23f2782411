"""The executor side of the Spark engine: the per-batch function given to ``mapInPandas``.

Executors score with the same ``Predictor`` and per-frame code as the local engine, so both
engines write the same rows for the same input. The model dir arrives by
``SparkContext.addFile`` and is loaded once per Python worker (cached by path).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlship.batch.frames import Scored, from_text, score_frame
from mlship.batch.report import record_json
from mlship.scoring.predictor import Predictor
from mlship.scoring.problems import Code, Problem
from mlship.scoring.results import PREDICTION, result_fields

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

KEYS = ["_file", "_block", "_pos"]
MALFORMED = "_mlship_malformed_line"  # Spark's corrupt-record column: the line's text
LineShape = tuple[int, str]  # a CSV line's expected number of fields, and its separator


@dataclass(frozen=True)
class Layout:
    """What the executors read: the model's columns, the id column, and whether the input is
    CSV text (with, under ``skip``, the shape a line must have)."""

    columns: list[str]
    id_column: str | None
    text: bool
    line_shape: LineShape | None = None


PROBLEM_FIELDS = ["_code", "_column", "_error", "_record"]
_PREDICTORS: dict[str, Predictor] = {}
LOADS: dict[str, int] = {}  # loads per model path in this process; tests check it stays at 1


def cached_predictor(path: str) -> Predictor:
    """The predictor for ``path``, loaded at most once per Python process."""
    predictor = _PREDICTORS.get(path)
    if predictor is None:
        predictor = Predictor.load(path)
        _PREDICTORS[path] = predictor
        LOADS[path] = LOADS.get(path, 0) + 1
    return predictor


def output_type(predictor: Predictor, input_schema: StructType, id_column: str | None) -> Any:
    """Keys, the id, the shared result columns, and what was wrong with each bad row."""
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    types = {"string": StringType(), "double": DoubleType()}
    fields = [
        StructField("_file", StringType()),
        StructField("_block", LongType()),
        StructField("_pos", LongType()),
    ]
    if id_column:
        fields.append(input_schema[id_column])
    kinds = result_fields(predictor.info.classes, predictor.is_classifier)
    fields += [StructField(name, types[kind]) for name, kind in kinds]
    fields += [StructField(name, StringType()) for name in PROBLEM_FIELDS]
    return StructType(fields)


def csv_separator(uri: str) -> str:
    return "\t" if uri.lower().endswith(".tsv") else ","


def malformed_lines(frame: pd.DataFrame, shape: LineShape | None) -> dict[int, Problem]:
    """Rows Spark parsed from a line with the wrong number of fields, as the local engine
    words them (``malformed line (expected 18 fields, got 19)``)."""
    if shape is None or MALFORMED not in frame.columns:
        return {}
    fields, separator = shape
    problems = {}
    for row in np.flatnonzero(frame[MALFORMED].notna().to_numpy()).tolist():
        line = str(frame[MALFORMED].iat[row])
        got = len(next(csv.reader([line], delimiter=separator), []))
        message = f"malformed line (expected {fields} fields, got {got})"
        problems[row] = Problem(Code.malformed, message, row)
    return problems


def split_positions(
    files: np.ndarray, blocks: np.ndarray, seen: dict[tuple[str, int], int]
) -> np.ndarray:
    """Each row's position in its file split; ``seen`` carries counts across a partition's
    batches. A partition reads its splits one after another, so a split is one run of rows."""
    change = np.ones(len(files), dtype=bool)
    change[1:] = (files[1:] != files[:-1]) | (blocks[1:] != blocks[:-1])
    starts = np.flatnonzero(change)
    position = np.empty(len(files), dtype=np.int64)
    for start, stop in zip(starts, [*starts[1:], len(files)], strict=True):
        key = (str(files[start]), int(blocks[start]))
        base = seen.get(key, 0)
        position[start:stop] = np.arange(base, base + stop - start)
        seen[key] = int(base + stop - start)
    return position


def score_batch(
    predictor: Predictor, frame: pd.DataFrame, layout: Layout, seen: dict[tuple[str, int], int]
) -> pd.DataFrame:
    """Score one Arrow batch of a partition: keys, id, results, and what was wrong per row."""
    files = frame["_file"].to_numpy(dtype=object)
    blocks = frame["_block"].to_numpy()
    out = pd.DataFrame({"_file": files, "_block": blocks})
    out["_pos"] = split_positions(files, blocks, seen)
    if layout.id_column:
        out[layout.id_column] = frame[layout.id_column].to_numpy()
    raw = frame[layout.columns].reset_index(drop=True)
    features = from_text(raw, predictor) if layout.text else raw
    scored = score_frame(predictor, features, None, None, skip=True)
    malformed = malformed_lines(frame.reset_index(drop=True), layout.line_shape)
    if malformed:
        scored = _set_aside(scored, malformed)
    empty = np.full(len(frame), None, dtype=object)
    names = [name for name, _ in result_fields(predictor.info.classes, predictor.is_classifier)]
    if not scored.bad:  # the usual batch: results as they are
        for name in names:
            out[name] = scored.output[name].to_numpy()
        for name in PROBLEM_FIELDS:
            out[name] = empty
        return out
    for name in names:
        is_label = name == PREDICTION and predictor.is_classifier
        values = np.full(len(frame), None if is_label else np.nan, dtype=object)
        if len(scored.good):
            values[scored.good] = scored.output[name].to_numpy(dtype=object)
        out[name] = values if is_label else values.astype("float64")
    codes, problem_columns, errors, records = (empty.copy() for _ in range(4))
    for row, problem in scored.bad.items():
        codes[row] = problem.code.value
        errors[row] = problem.message
        problem_columns[row] = problem.column
        if row in malformed:
            records[row] = str(frame[MALFORMED].iat[row])[:200]
        else:
            records[row] = record_json(raw.iloc[row].to_dict())
    out["_code"], out["_column"], out["_error"], out["_record"] = (
        codes,
        problem_columns,
        errors,
        records,
    )
    return out


def _set_aside(scored: Scored, malformed: dict[int, Problem]) -> Scored:
    """``scored`` with the malformed lines' rows moved from the output to the bad rows."""
    keep = ~np.isin(scored.good, list(malformed))
    output = scored.output[keep].reset_index(drop=True)
    return Scored(output, scored.good[keep], {**scored.bad, **malformed})


PartitionScorer = Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]


def scorer(model_name: str, layout: Layout) -> PartitionScorer:
    """The function ``mapInPandas`` runs on each partition."""

    def score_partition(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import SparkFiles

        predictor = cached_predictor(SparkFiles.get(model_name))
        seen: dict[tuple[str, int], int] = {}
        for frame in frames:
            if len(frame):
                yield score_batch(predictor, frame, layout, seen)

    return score_partition
