"""Spark engine of ``mlship predict``: the predictor core over a DataFrame with ``mapInPandas``.

Why it is built this way:

- Executors score with the same ``Predictor`` and the same per-frame code as the local engine
  (``mlship.batch.from_text`` and ``score_frame``), so both engines write the same rows for
  the same input. The model dir ships with ``SparkContext.addFile`` and is loaded once per
  Python worker (cached by path), not once per batch.
- Spark packs input files into partitions by size, not by name, so every row carries its
  file, split offset and position in the split, and the output is sorted on them: rows come
  out in input order, as with the local engine.
- A bad row never fails a task (a retried task would only fail again): the scorer marks it,
  the result is persisted, and the driver either fails the job naming the first bad row in
  input order (``fail``) or writes the good rows and reports the bad ones (``skip``).
- Output is written to a hidden sibling path and renamed into place through Hadoop's
  FileSystem once everything succeeded, so a failed job leaves nothing at the output URI.

``python -m mlship.spark --model DIR --input URI --output URI`` (or this file given to
``spark-submit``) runs ``mlship predict --engine spark`` for Dataproc, EMR or Databricks jobs;
the master then comes from spark-submit.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlship.batch import (
    REPORTED,
    BatchResult,
    OnError,
    describe,
    from_text,
    record_json,
    score_frame,
)
from mlship.data import infer_format
from mlship.errors import DataError, InputError, MlshipError, ModelError
from mlship.predictor import Predictor

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

KEYS = ["_file", "_block", "_pos"]
_PREDICTORS: dict[str, Predictor] = {}
LOADS: dict[str, int] = {}  # loads per model path in this process; tests check it stays at 1


def cached_predictor(path: str) -> Predictor:
    """The predictor for ``path``, loaded at most once per Python process."""
    predictor = _PREDICTORS.get(path)
    if predictor is None:
        predictor = Predictor.load(path, extra_columns="ignore")
        _PREDICTORS[path] = predictor
        LOADS[path] = LOADS.get(path, 0) + 1
    return predictor


def session(master: str | None = None, batch_rows: int = 50_000) -> SparkSession:
    """A SparkSession; a ``local`` master binds to loopback and uses this interpreter."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise MlshipError(
            "--engine spark needs pyspark (pip install 'mlship[spark]') and Java 17+"
        ) from None
    builder = SparkSession.builder.appName("mlship-predict").config(
        "spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows)
    )
    if master:
        builder = builder.master(master)
    if master and master.startswith("local"):
        # PySpark starts UDF workers with $PYSPARK_PYTHON (default: python3 on PATH, which
        # may lack mlship); locally, this interpreter is the right one.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        for key, value in {
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.host": "127.0.0.1",
            "spark.ui.enabled": "false",
            "spark.pyspark.python": sys.executable,
            "spark.pyspark.driver.python": sys.executable,
        }.items():
            builder = builder.config(key, value)
    with _spark_errors("starting Spark"):
        spark: SparkSession = builder.getOrCreate()
    return spark


def _reason(exc: BaseException) -> str:
    """One line from a Spark error: the Python worker's own exception if there is one."""
    text = str(exc)
    python: list[tuple[str, str]] = re.findall(
        r"^(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$", text, re.MULTILINE
    )
    if "Traceback (most recent call last)" in text and python:
        return python[-1][1].strip()
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


@contextlib.contextmanager
def _spark_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except MlshipError:
        raise
    except Exception as exc:
        module = type(exc).__module__
        if module.startswith(("pyspark", "py4j")):
            raise DataError(f"spark: {doing}: {_reason(exc)}") from None
        raise


class _HadoopPath:
    """A path on whatever filesystem Spark writes to (file:, hdfs:, s3a:, gs:, abfss:, dbfs:)."""

    def __init__(self, spark: SparkSession, uri: str) -> None:
        context: Any = spark.sparkContext
        self.path = context._jvm.org.apache.hadoop.fs.Path(uri)
        self.fs = self.path.getFileSystem(context._jsc.hadoopConfiguration())
        self.uri = uri

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def delete(self) -> None:
        if self.fs.exists(self.path):
            self.fs.delete(self.path, True)

    def visible_children(self) -> list[str]:
        if not self.fs.getFileStatus(self.path).isDirectory():
            return [self.uri]
        names = [str(s.getPath().getName()) for s in self.fs.listStatus(self.path)]
        return sorted(n for n in names if not n.startswith((".", "_")))

    def replace_with(self, staged: _HadoopPath) -> None:
        """Move ``staged`` to this path, removing what was here only once ``staged`` is whole."""
        parent = self.path.getParent()
        if parent is not None and not self.fs.exists(parent):
            self.fs.mkdirs(parent)
        self.delete()
        if not self.fs.rename(staged.path, self.path):
            raise DataError(f"--output {self.uri!r}: could not move the finished output there")


def _sibling(uri: str) -> str:
    parent, sep, name = uri.rstrip("/").rpartition("/")
    return f"{parent}{sep}.{name}.tmp-{uuid.uuid4().hex[:8]}"


def _format(spark: SparkSession, uri: str) -> str:
    name = uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if "." in name or "*" in name:
        return infer_format(uri)
    with _spark_errors(f"listing {uri}"):
        files = _HadoopPath(spark, uri).visible_children()
    try:
        return infer_format(files[0]) if files else "parquet"
    except DataError:
        return "parquet"


def _read(spark: SparkSession, uri: str, fmt: str, on_error: OnError) -> DataFrame:
    with _spark_errors(f"reading {uri}"):
        if fmt == "csv":
            return spark.read.csv(
                uri,
                header=True,
                inferSchema=False,
                escape='"',
                sep="\t" if uri.lower().endswith(".tsv") else ",",
                mode="FAILFAST" if on_error == "fail" else "DROPMALFORMED",
            )
        return spark.read.parquet(uri)


def _output_type(predictor: Predictor, input_schema: StructType, id_column: str | None) -> Any:
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    fields = [
        StructField("_file", StringType()),
        StructField("_block", LongType()),
        StructField("_pos", LongType()),
    ]
    if id_column:
        fields.append(input_schema[id_column])
    if predictor.is_classifier:
        fields.append(StructField("prediction", StringType()))
        fields += [StructField(f"proba_{c}", DoubleType()) for c in predictor.info.classes]
    else:
        fields.append(StructField("prediction", DoubleType()))
    fields += [
        StructField("_column", StringType()),
        StructField("_error", StringType()),
        StructField("_record", StringType()),
    ]
    return StructType(fields)


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
    predictor: Predictor,
    frame: pd.DataFrame,
    columns: list[str],
    id_column: str | None,
    text: bool,
    seen: dict[tuple[str, int], int],
) -> pd.DataFrame:
    """Score one Arrow batch of a partition: keys, id, results, and what was wrong per row."""
    files = frame["_file"].to_numpy(dtype=object)
    blocks = frame["_block"].to_numpy()
    out = pd.DataFrame({"_file": files, "_block": blocks})
    out["_pos"] = split_positions(files, blocks, seen)
    if id_column:
        out[id_column] = frame[id_column].to_numpy()
    raw = frame[columns].reset_index(drop=True)
    features = from_text(raw, predictor) if text else raw
    scored = score_frame(predictor, features, None, None, skip=True)
    errors = np.full(len(frame), None, dtype=object)
    if not scored.bad:  # the usual batch: results as they are
        for name in scored.output.columns:
            out[name] = scored.output[name].to_numpy()
        out["_column"], out["_error"], out["_record"] = errors, errors, errors
        return out
    for name in _result_columns(predictor):
        values = np.full(len(frame), None if name == "prediction" else np.nan, dtype=object)
        if len(scored.good):
            values[scored.good] = scored.output[name].to_numpy(dtype=object)
        out[name] = values if name == "prediction" else values.astype("float64")
    problem_columns = errors.copy()
    records = errors.copy()
    for row, detail in scored.bad.items():
        errors[row] = detail["error"]
        problem_columns[row] = detail.get("column")
        records[row] = record_json(raw.iloc[row].to_dict())
    out["_column"], out["_error"], out["_record"] = problem_columns, errors, records
    return out


def _result_columns(predictor: Predictor) -> list[str]:
    if not predictor.is_classifier:
        return ["prediction"]
    return ["prediction", *(f"proba_{c}" for c in predictor.info.classes)]


def _scorer(
    model_name: str, columns: list[str], id_column: str | None, text: bool
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def score_partition(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import SparkFiles

        predictor = cached_predictor(SparkFiles.get(model_name))
        seen: dict[tuple[str, int], int] = {}
        for frame in frames:
            if len(frame):
                yield score_batch(predictor, frame, columns, id_column, text, seen)

    return score_partition


def _ship_model(spark: SparkSession, model_dir: Path) -> str:
    """Send the model dir to every executor; returns the name ``SparkFiles.get`` knows it by."""
    root = model_dir.resolve()
    with _spark_errors(f"shipping model dir {root}"):
        try:
            spark.sparkContext.addFile(str(root), recursive=True)
        except Exception as exc:
            if "already registered with a different path" in str(exc):
                raise ModelError(
                    f"--model {model_dir}: another model dir named {root.name!r} was already "
                    "shipped in this Spark session; give this one a different name"
                ) from None
            raise
    return root.name


def _located(row: Any, text: bool) -> dict[str, Any]:
    first_split = int(row["_block"]) == 0
    position = int(row["_pos"])
    return {
        "file": row["_file"],
        "row": position if first_split else None,
        "line": position + 2 if first_split and text else None,
        "column": row["_column"],
        "error": row["_error"]
        if first_split
        else f"{row['_error']} (in the split at byte {row['_block']}, row {position} of it)",
    }


def score(
    spark: SparkSession,
    model_dir: Path,
    input_uri: str,
    output_uri: str,
    *,
    batch_rows: int = 50_000,
    id_column: str | None = None,
    on_error: OnError = "fail",
    rejected_uri: str | None = None,
) -> BatchResult:
    """Score ``input_uri`` into ``output_uri`` (a directory of Parquet or CSV parts)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as sf

    if batch_rows < 1:
        raise DataError("--batch-rows must be at least 1")
    predictor = Predictor.load(model_dir, extra_columns="ignore")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
    fmt = _format(spark, input_uri)
    frame = _read(spark, input_uri, fmt, on_error)
    columns = list(predictor.column_names)
    if id_column and id_column not in columns:
        columns.append(id_column)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"--input {input_uri!r}: required column(s) {', '.join(map(repr, missing))} missing "
            f"(columns: {', '.join(frame.columns)})"
        )
    selected = frame.select(
        *[sf.col(f"`{c}`") for c in columns],
        sf.col("_metadata.file_path").alias("_file"),
        sf.col("_metadata.file_block_start").alias("_block"),
    )
    name = _ship_model(spark, model_dir)
    result_type = _output_type(predictor, frame.schema, id_column)
    scorer = _scorer(name, columns, id_column, fmt == "csv")
    scored = selected.mapInPandas(scorer, result_type).persist(StorageLevel.DISK_ONLY)
    result = BatchResult(0, 0, 0, output=output_uri, rejected_output=rejected_uri)
    staged: list[_HadoopPath] = []
    try:
        with _spark_errors(f"scoring {input_uri}"):
            counts = scored.agg(
                sf.count(sf.lit(1)).alias("rows"), sf.count("_error").alias("bad")
            ).first()
            result.rows = int(counts["rows"]) if counts else 0
            result.rejected = int(counts["bad"]) if counts else 0
            result.scored = result.rows - result.rejected
            bad = scored.where(sf.col("_error").isNotNull())
            if result.rejected:
                first = bad.orderBy(*KEYS).limit(REPORTED).collect()
                result.problems = [_located(r, fmt == "csv") for r in first]
        if result.rejected and on_error == "fail":
            more = f" (+{result.rejected - 1} more)" if result.rejected > 1 else ""
            raise InputError(describe(result.problems[0]) + more, result.problems)
        outputs = [c for c in result_type.fieldNames() if not c.startswith("_")]
        good = scored.where(sf.col("_error").isNull()).orderBy(*KEYS).select(*outputs)
        targets = [(good, output_uri)]
        if rejected_uri:
            block0 = sf.col("_block") == 0
            rejects = bad.orderBy(*KEYS).select(
                sf.col("_file").alias("file"),
                sf.when(block0, sf.col("_pos")).alias("row"),
                sf.when(block0 & sf.lit(fmt == "csv"), sf.col("_pos") + 2).alias("line"),
                sf.when(
                    sf.col("_column").isNotNull(),
                    sf.concat(
                        sf.lit("column '"), sf.col("_column"), sf.lit("': "), sf.col("_error")
                    ),
                )
                .otherwise(sf.col("_error"))
                .alias("error"),
                sf.col("_record").alias("record"),
            )
            targets.append((rejects, rejected_uri))
        for data, uri in targets:
            target = _HadoopPath(spark, _sibling(uri))
            staged.append(target)
            with _spark_errors(f"writing {uri}"):
                _write(data, target.uri, uri)
        with _spark_errors(f"committing {output_uri}"):
            for target, (_, uri) in zip(staged, targets, strict=True):
                _HadoopPath(spark, uri).replace_with(target)
    finally:
        with contextlib.suppress(Exception):
            for target in staged:
                target.delete()
        scored.unpersist()
    return result


def _write(data: DataFrame, staging: str, uri: str) -> None:
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    fmt = infer_format(uri) if "." in name else "parquet"
    if fmt == "csv":
        data.write.csv(staging, header=True, escape='"')
    else:
        data.write.parquet(staging)


def main(argv: list[str] | None = None) -> None:
    """``python -m mlship.spark`` / spark-submit: ``mlship predict --engine spark ...``."""
    from mlship.cli import app

    app(["predict", "--engine", "spark", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
