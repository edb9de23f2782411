"""The driver's report of a scored Spark frame: counts, the first bad rows, the rejects output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlship.batch.report import REPORTED, BatchResult, Located
from mlship.batch.spark_scorer import KEYS
from mlship.scoring.problems import Code

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def located(row: Any, text: bool) -> Located:
    first_split = int(row["_block"]) == 0
    position = int(row["_pos"])
    error = row["_error"]
    if not first_split:
        error = f"{error} (in the split at byte {row['_block']}, row {position} of it)"
    return Located(
        file=row["_file"],
        error=error,
        row=position if first_split else None,
        line=position + 2 if first_split and text else None,
        column=row["_column"],
        code=Code(row["_code"]),
    )


def count(scored: DataFrame, result: BatchResult, text: bool) -> None:
    from pyspark.sql import functions as sf

    counts = scored.agg(sf.count(sf.lit(1)).alias("rows"), sf.count("_error").alias("bad")).first()
    result.rows = int(counts["rows"]) if counts else 0
    result.rejected = int(counts["bad"]) if counts else 0
    result.scored = result.rows - result.rejected
    if result.rejected:
        bad = scored.where(sf.col("_error").isNotNull())
        first = bad.orderBy(*KEYS).limit(REPORTED).collect()
        result.problems = [located(r, text) for r in first]


def rejects(scored: DataFrame, text: bool) -> DataFrame:
    """The rejected-rows output: file, row, line, error (with its column), the record."""
    from pyspark.sql import functions as sf

    block0 = sf.col("_block") == 0
    with_column = sf.concat(sf.lit("column '"), sf.col("_column"), sf.lit("': "), sf.col("_error"))
    return (
        scored.where(sf.col("_error").isNotNull())
        .orderBy(*KEYS)
        .select(
            sf.col("_file").alias("file"),
            sf.when(block0, sf.col("_pos")).alias("row"),
            sf.when(block0 & sf.lit(text), sf.col("_pos") + 2).alias("line"),
            sf.when(sf.col("_column").isNotNull(), with_column)
            .otherwise(sf.col("_error"))
            .alias("error"),
            sf.col("_record").alias("record"),
        )
    )
