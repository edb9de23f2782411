"""Spark engine of ``mlship predict``: the driver that reads, scores and commits.

- The executor side (``spark_scorer``) runs the same per-frame code as the local engine.
- Spark packs input files into partitions by size, not by name, so every row carries its
  file, split offset and position in the split, and the output is sorted on them: rows come
  out in input order, as with the local engine.
- A bad row never fails a task (a retried task would only fail again): the scorer marks it,
  the result is persisted, and the driver either fails the job naming the first bad row in
  input order (``fail``) or writes the good rows and reports the bad ones (``skip``).
- Output is written to a hidden sibling path and renamed into place through Hadoop's
  FileSystem once everything succeeded, so a failed job leaves nothing at the output URI.

For Dataproc, EMR or Databricks, ``spark-submit`` the file of ``mlship.cli.spark_submit``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlship.batch.hadoop import HadoopPath, sibling
from mlship.batch.options import BatchOptions
from mlship.batch.reader import require_columns
from mlship.batch.report import BadRowsError, BatchResult
from mlship.batch.spark_report import count, rejects
from mlship.batch.spark_scorer import (
    KEYS,
    MALFORMED,
    Layout,
    csv_separator,
    output_type,
    scorer,
)
from mlship.errors import DataError, MlshipError, ModelError
from mlship.scoring.predictor import Predictor
from mlship.storage import has_suffix, infer_format

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def session(master: str | None = None, batch_rows: int = 50_000) -> SparkSession:
    """A SparkSession; a ``local`` master binds to loopback and uses this interpreter."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise MlshipError(
            "the spark engine needs pyspark (pip install 'mlship[spark]') and Java 17+"
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


def _format(spark: SparkSession, uri: str) -> str:
    name = uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if "." in name or "*" in name:
        return infer_format(uri)
    with _spark_errors(f"listing {uri}"):
        files = HadoopPath(spark, uri).visible_children()
    try:
        return infer_format(files[0]) if files else "parquet"
    except DataError:
        return "parquet"


def _read(spark: SparkSession, uri: str, fmt: str) -> DataFrame:
    """The input; a CSV line with the wrong number of fields is kept, its text in
    ``MALFORMED``, so the scorer reports it like any bad row: it fails the job under ``fail``
    and is counted under ``skip`` (``FAILFAST`` would let a line with extra fields through
    truncated, ``DROPMALFORMED`` would drop it without a count)."""
    from pyspark.sql.types import StringType, StructField, StructType

    with _spark_errors(f"reading {uri}"):
        if fmt != "csv":
            return spark.read.parquet(uri)
        options: dict[str, Any] = {
            "header": True,
            "inferSchema": False,
            "escape": '"',
            "sep": csv_separator(uri),
        }
        names = spark.read.csv(uri, **options).columns  # the header: every field as text
        schema = StructType([StructField(n, StringType()) for n in [*names, MALFORMED]])
        return spark.read.csv(
            uri, schema=schema, mode="PERMISSIVE", columnNameOfCorruptRecord=MALFORMED, **options
        )


def _ship_model(spark: SparkSession, model_dir: Path) -> str:
    """Send the model dir to every executor; returns the name ``SparkFiles.get`` knows it by."""
    root = model_dir.resolve()
    with _spark_errors(f"shipping model dir {root}"):
        try:
            spark.sparkContext.addFile(str(root), recursive=True)
        except Exception as exc:
            if "already registered with a different path" in str(exc):
                raise ModelError(
                    f"model dir {model_dir}: another model dir named {root.name!r} was already "
                    "shipped in this Spark session; give this one a different name"
                ) from None
            raise
    return root.name


def _scored(
    spark: SparkSession, predictor: Predictor, model_dir: Path, options: BatchOptions, fmt: str
) -> tuple[DataFrame, Any]:
    """The input read, keyed by file position and scored (lazily) on the executors."""
    from pyspark.sql import functions as sf

    frame = _read(spark, options.input_uri, fmt)
    columns = options.needed_columns(predictor.column_names)
    require_columns(f"input {options.input_uri!r}", list(frame.columns), columns)
    marked = [sf.col(MALFORMED)] if MALFORMED in frame.columns else []
    selected = frame.select(
        *[sf.col(f"`{c}`") for c in columns],
        *marked,
        sf.col("_metadata.file_path").alias("_file"),
        sf.col("_metadata.file_block_start").alias("_block"),
    )
    name = _ship_model(spark, model_dir)
    result_type = output_type(predictor, frame.schema, options.id_column)
    line_shape = (len(frame.columns) - 1, csv_separator(options.input_uri)) if marked else None
    layout = Layout(columns, options.id_column, fmt == "csv", line_shape)
    partition_scorer = scorer(name, layout)
    return selected.mapInPandas(partition_scorer, result_type), result_type


def _commit(spark: SparkSession, targets: list[tuple[DataFrame, str]]) -> None:
    """Write each target beside its URI, then move them all into place."""
    staged: list[HadoopPath] = []
    try:
        for data, uri in targets:
            target = HadoopPath(spark, sibling(uri))
            staged.append(target)
            with _spark_errors(f"writing {uri}"):
                _write(data, target.uri, uri)
        with _spark_errors(f"committing {targets[0][1]}"):
            for target, (_, uri) in zip(staged, targets, strict=True):
                HadoopPath(spark, uri).replace_with(target)
    finally:
        with contextlib.suppress(Exception):
            for target in staged:
                target.delete()


def score(spark: SparkSession, model_dir: Path, options: BatchOptions) -> BatchResult:
    """Score ``options.input_uri`` into ``options.output_uri`` (a directory of parts)."""
    predictor = Predictor.load(model_dir)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(options.batch_rows))
    fmt = _format(spark, options.input_uri)
    with _every_field_parsed(spark, fmt == "csv"):
        return _score(spark, predictor, model_dir, options, fmt)


@contextlib.contextmanager
def _every_field_parsed(spark: SparkSession, wanted: bool) -> Iterator[None]:
    """CSV column pruning parses only the selected fields and then cannot see a line with
    too many or too few of them: off while this job runs, so malformed lines are caught."""
    key = "spark.sql.csv.parser.columnPruning.enabled"
    before = spark.conf.get(key, "true") or "true"
    if wanted:
        spark.conf.set(key, "false")
    try:
        yield
    finally:
        spark.conf.set(key, before)


def _score(
    spark: SparkSession, predictor: Predictor, model_dir: Path, options: BatchOptions, fmt: str
) -> BatchResult:
    from pyspark import StorageLevel
    from pyspark.sql import functions as sf

    text = fmt == "csv"
    lazy, result_type = _scored(spark, predictor, model_dir, options, fmt)
    scored = lazy.persist(StorageLevel.DISK_ONLY)
    result = BatchResult(output=options.output_uri, rejected_output=options.rejected_uri)
    try:
        with _spark_errors(f"scoring {options.input_uri}"):
            count(scored, result, text)
        if result.rejected and options.on_error == "fail":
            raise BadRowsError(result.problems, result.rejected)
        outputs = [c for c in result_type.fieldNames() if not c.startswith("_")]
        good = scored.where(sf.col("_error").isNull()).orderBy(*KEYS).select(*outputs)
        targets = [(good, options.output_uri)]
        if options.rejected_uri:
            targets.append((rejects(scored, text), options.rejected_uri))
        _commit(spark, targets)
    finally:
        scored.unpersist()
    return result


def _write(data: DataFrame, staging: str, uri: str) -> None:
    fmt = infer_format(uri) if has_suffix(uri) else "parquet"
    if fmt == "csv":
        data.write.csv(staging, header=True, escape='"')
    else:
        data.write.parquet(staging)
