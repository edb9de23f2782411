"""The Spark engine in local[2]: the same output as the local engine on the same input (rows,
order, labels, probabilities within 1e-12), one model load per Python worker, and nothing at
the output URI when the job fails. Input is split into many partitions on purpose."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlship.errors import DataError
from mlship.scoring.predictor import Predictor
from mlship.scoring.problems import InputError
from tests.batch.conftest import assert_same_scores, run_batch
from tests.batch.test_streaming import with_bad_cells, write_csv
from tests.conftest import ROOT

pyspark = pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow

from pyspark.sql import SparkSession  # noqa: E402

from mlship.batch import spark as spark_engine  # noqa: E402
from mlship.batch import spark_scorer  # noqa: E402
from mlship.batch.options import BatchOptions  # noqa: E402


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    session = spark_engine.session("local[2]", batch_rows=128)
    # Small splits: several partitions per file, so order must be restored, not assumed.
    session.conf.set("spark.sql.files.maxPartitionBytes", "16k")
    session.conf.set("spark.sql.files.openCostInBytes", "0")
    yield session
    session.stop()


def local_scores(predictor: Predictor, source: Path, tmp: Path, **options: object) -> pd.DataFrame:
    out = tmp / f"local-{source.name}.parquet"
    run_batch(predictor, str(source), str(out), id_column="order_id", **options)  # type: ignore[arg-type]
    return pd.read_parquet(out)


def test_parquet_files_of_unequal_size_match_the_local_engine(
    spark: SparkSession, tmp_path: Path, oj: pd.DataFrame, predictor: Predictor, model_dir: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i, (start, stop) in enumerate([(0, 90), (90, 800), (800, 1070)]):
        oj.iloc[start:stop].to_parquet(folder / f"part-{i}.parquet", row_group_size=64)
    out = tmp_path / "spark-out"
    result = spark_engine.score(
        spark, model_dir, BatchOptions(str(folder), str(out), batch_rows=128, id_column="order_id")
    )
    assert (result.rows, result.scored, result.rejected) == (1070, 1070, 0)
    assert spark.read.parquet(str(folder)).rdd.getNumPartitions() > 3
    assert_same_scores(pd.read_parquet(out), local_scores(predictor, folder, tmp_path))


def test_csv_split_by_bytes_matches_the_local_engine(
    spark: SparkSession, tmp_path: Path, oj: pd.DataFrame, predictor: Predictor, model_dir: Path
) -> None:
    source = write_csv(oj, tmp_path / "oj.csv")
    out = tmp_path / "spark-out.csv"
    spark_engine.score(spark, model_dir, BatchOptions(str(source), str(out), id_column="order_id"))
    assert spark.read.csv(str(source), header=True).rdd.getNumPartitions() > 1
    parts = sorted(out.glob("part-*.csv"))
    scored = pd.concat([pd.read_csv(part) for part in parts], ignore_index=True)
    assert_same_scores(scored, local_scores(predictor, source, tmp_path))


def test_predictor_is_loaded_once_per_python_worker(
    spark: SparkSession, model_dir: Path, oj: pd.DataFrame
) -> None:
    name = spark_engine._ship_model(spark, model_dir)

    def probe(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import SparkFiles

        from mlship.batch import spark_scorer as engine

        path = SparkFiles.get(name)
        for frame in frames:
            engine.cached_predictor(path).predict_frame(frame)
            yield pd.DataFrame({"pid": [os.getpid()], "loads": [engine.LOADS[path]]})

    frames = spark.createDataFrame(oj.drop(columns=["order_id"])).repartition(12)
    seen = frames.mapInPandas(probe, "pid long, loads long").toPandas()
    assert len(seen) >= 12  # at least one batch per partition
    assert seen["pid"].nunique() < len(seen)  # workers were reused across partitions
    assert (seen["loads"] == 1).all()


def test_bad_row_fails_naming_it_and_leaves_nothing(
    spark: SparkSession, tmp_path: Path, oj: pd.DataFrame, model_dir: Path
) -> None:
    source = write_csv(with_bad_cells(oj, {20: ("PriceCH", "1,99")}), tmp_path / "in.csv")
    out = tmp_path / "out" / "scores"
    with pytest.raises(InputError, match=r"in\.csv line 22, column 'PriceCH': expected a number"):
        spark_engine.score(
            spark, model_dir, BatchOptions(str(source), str(out), id_column="order_id")
        )
    # Nothing at the output, nor a staging dir beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_skip_matches_the_local_engine_and_writes_rejects(
    spark: SparkSession, tmp_path: Path, oj: pd.DataFrame, predictor: Predictor, model_dir: Path
) -> None:
    bad = {5: ("PriceMM", "abc"), 40: ("LoyalCH", "")}
    source = tmp_path / "in.parquet"
    with_bad_cells(oj, bad).astype(str).replace({"": None}).to_parquet(source)
    out, rejected = tmp_path / "scores", tmp_path / "rejected"
    options = BatchOptions(
        str(source), str(out), id_column="order_id", on_error="skip", rejected_uri=str(rejected)
    )
    result = spark_engine.score(spark, model_dir, options)
    assert (result.scored, result.rejected) == (1068, 2)
    assert [p.row for p in result.problems] == [5, 40]
    want = local_scores(predictor, source, tmp_path, on_error="skip")
    assert_same_scores(pd.read_parquet(out), want)
    rows = pd.read_parquet(rejected)
    assert rows["row"].tolist() == [5, 40]
    assert rows["error"].tolist()[0] == "column 'PriceMM': expected a number, got 'abc'"


def test_skip_counts_and_reports_a_malformed_line(
    spark: SparkSession, tmp_path: Path, oj: pd.DataFrame, predictor: Predictor, model_dir: Path
) -> None:
    lines = write_csv(oj, tmp_path / "clean.csv").read_text().splitlines()
    lines[40] += ",extra"  # data row 39, line 41
    source = tmp_path / "in.csv"
    source.write_text("\n".join(lines) + "\n")
    out, rejected = tmp_path / "scores", tmp_path / "rejected"
    options = BatchOptions(
        str(source), str(out), id_column="order_id", on_error="skip", rejected_uri=str(rejected)
    )
    result = spark_engine.score(spark, model_dir, options)
    assert (result.scored, result.rejected) == (1069, 1)
    width = len(oj.columns)
    assert [(p.row, p.line) for p in result.problems] == [(39, 41)]
    assert result.problems[0].error == f"malformed line (expected {width} fields, got {width + 1})"
    local = local_scores(predictor, source, tmp_path, on_error="skip")
    assert_same_scores(pd.read_parquet(out), local)
    rows = pd.read_parquet(rejected)
    assert rows["record"].tolist() == [lines[40]]


def test_a_malformed_line_fails_the_job_under_fail(
    spark: SparkSession, tmp_path: Path, oj: pd.DataFrame, model_dir: Path
) -> None:
    lines = write_csv(oj, tmp_path / "clean.csv").read_text().splitlines()
    lines[40] += ",extra"  # Spark's FAILFAST would score it, the extra field cut off
    source = tmp_path / "in.csv"
    source.write_text("\n".join(lines) + "\n")
    (tmp_path / "clean.csv").unlink()
    width = len(oj.columns)
    with pytest.raises(
        InputError, match=rf"line 41: malformed line \(expected {width} fields, got {width + 1}\)"
    ):
        spark_engine.score(spark, model_dir, BatchOptions(str(source), str(tmp_path / "out")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_missing_column_is_a_named_error(
    spark: SparkSession, tmp_path: Path, oj: pd.DataFrame, model_dir: Path
) -> None:
    source = write_csv(oj.drop(columns=["LoyalCH"]), tmp_path / "in.csv")
    with pytest.raises(DataError, match="required column\\(s\\) 'LoyalCH' missing"):
        spark_engine.score(spark, model_dir, BatchOptions(str(source), str(tmp_path / "o")))
    with pytest.raises(DataError, match=r"spark: reading .*nowhere"):
        spark_engine.score(
            spark, model_dir, BatchOptions(str(tmp_path / "nowhere.csv"), str(tmp_path / "o"))
        )


def test_spark_submit_entry_point(tmp_path: Path, oj: pd.DataFrame, model_dir: Path) -> None:
    """``mlship.cli.spark_submit`` is what spark-submit runs: same options as mlship predict."""
    source = write_csv(oj, tmp_path / "in.csv")
    out = tmp_path / "scores.parquet"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run(
        [sys.executable, "-m", "mlship.cli.spark_submit", "--model", str(model_dir), "--input", str(source),
         "--output", str(out), "--master", "local[2]", "--id-column", "order_id"],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "scored 1,070 rows" in done.stdout
    assert pd.read_parquet(out)["order_id"].tolist() == oj["order_id"].tolist()


def test_split_positions_continue_across_batches() -> None:
    """Rows of a split arrive as one run, possibly over several Arrow batches."""
    seen: dict[tuple[str, int], int] = {}
    first = spark_scorer.split_positions(
        np.array(["a", "a", "b", "b", "b"], dtype=object), np.array([0, 0, 0, 0, 64]), seen
    )
    second = spark_scorer.split_positions(
        np.array(["b", "c"], dtype=object), np.array([64, 0]), seen
    )
    assert first.tolist() == [0, 1, 0, 1, 0]
    assert second.tolist() == [1, 0]
    assert seen == {("a", 0): 2, ("b", 0): 2, ("b", 64): 2, ("c", 0): 1}


def test_a_failed_move_puts_the_previous_output_back(spark: SparkSession, tmp_path: Path) -> None:
    from mlship.batch.hadoop import HadoopPath

    output = tmp_path / "out"
    output.mkdir()
    (output / "part-0.parquet").write_bytes(b"previous run")
    vanished = HadoopPath(spark, str(tmp_path / ".out.tmp-gone"))  # nothing to move: rename fails
    with pytest.raises(Exception, match=r"does not exist|could not move"):  # Py4J or ours
        HadoopPath(spark, str(output)).replace_with(vanished)
    assert (output / "part-0.parquet").read_bytes() == b"previous run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing left aside


def test_a_finished_move_replaces_the_previous_output(spark: SparkSession, tmp_path: Path) -> None:
    from mlship.batch.hadoop import HadoopPath

    output, staged = tmp_path / "out", tmp_path / ".out.tmp-1"
    output.mkdir()
    staged.mkdir()
    (output / "part-0.parquet").write_bytes(b"previous run")
    (staged / "part-0.parquet").write_bytes(b"this run")
    HadoopPath(spark, str(output)).replace_with(HadoopPath(spark, str(staged)))
    assert (output / "part-0.parquet").read_bytes() == b"this run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
