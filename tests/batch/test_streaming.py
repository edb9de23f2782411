"""The local streaming engine: same scores as in-process prediction, input order kept, bad rows
named by file and line, and nothing left at the output URI when a job fails."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlship.batch.frames import from_text
from mlship.batch.job import Tick
from mlship.batch.report import REPORTED
from mlship.errors import DataError
from mlship.scoring.predictor import Predictor
from mlship.scoring.problems import InputError
from tests.batch.conftest import assert_same_scores, expected_scores, run_batch
from tests.conftest import run_cli


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def with_bad_cells(oj: pd.DataFrame, cells: dict[int, tuple[str, object]]) -> pd.DataFrame:
    """A copy of OJ as text with some cells replaced (row index -> (column, value))."""
    frame = oj.astype(object).copy()
    for row, (column, value) in cells.items():
        frame.loc[row, column] = value
    return frame


def test_csv_and_parquet_score_like_the_predictor_in_process(
    tmp_path: Path, oj: pd.DataFrame, predictor: Predictor
) -> None:
    want = expected_scores(predictor, oj)
    sources = {"csv": write_csv(oj, tmp_path / "in.csv"), "parquet": tmp_path / "in.parquet"}
    oj.to_parquet(sources["parquet"], row_group_size=200)
    for kind, source in sources.items():
        out = tmp_path / f"out-{kind}.parquet"
        result = run_batch(predictor, str(source), str(out), batch_rows=97, id_column="order_id")
        assert (result.rows, result.scored, result.rejected) == (1070, 1070, 0)
        assert_same_scores(pd.read_parquet(out), want)


def test_directory_and_glob_read_files_in_name_order(
    tmp_path: Path, oj: pd.DataFrame, predictor: Predictor
) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    # Unequal sizes, so an engine that orders by size would get it wrong.
    bounds = [0, 100, 900, 1070]
    for i, (start, stop) in enumerate(itertools.pairwise(bounds)):
        write_csv(oj.iloc[start:stop], folder / f"part-{i}.csv")
    (folder / "_SUCCESS").write_text("")
    (folder / ".hidden.csv").write_text("not,data\n")
    want = expected_scores(predictor, oj)
    for source in (folder, folder / "part-*.csv"):
        out = tmp_path / "out.csv"
        run_batch(predictor, str(source), str(out), batch_rows=250, id_column="order_id")
        assert_same_scores(pd.read_csv(out), want, tolerance=1e-12)


def test_batch_size_does_not_change_the_output(
    tmp_path: Path, oj: pd.DataFrame, predictor: Predictor
) -> None:
    source = write_csv(oj, tmp_path / "in.csv")
    small, large = tmp_path / "small.parquet", tmp_path / "large.parquet"
    run_batch(predictor, str(source), str(small), batch_rows=7, id_column="order_id")
    run_batch(predictor, str(source), str(large), batch_rows=100_000, id_column="order_id")
    assert_same_scores(pd.read_parquet(small), pd.read_parquet(large))
    assert pq.ParquetFile(small).metadata.num_row_groups == 153  # written as it went


def test_progress_reaches_the_total(tmp_path: Path, oj: pd.DataFrame, predictor: Predictor) -> None:
    source = tmp_path / "in.parquet"
    oj.to_parquet(source)
    ticks: list[Tick] = []
    run_batch(
        predictor, str(source), str(tmp_path / "o.parquet"), batch_rows=300, progress=ticks.append
    )
    assert [t.rows for t in ticks] == [300, 600, 900, 1070]
    assert ticks[-1].done == ticks[-1].total == 1070


def test_bad_cell_mid_stream_fails_naming_line_and_leaves_nothing(
    tmp_path: Path, oj: pd.DataFrame, model_dir: Path
) -> None:
    bad = {898: ("PriceCH", "1,99"), 899: ("LoyalCH", "")}
    source = write_csv(with_bad_cells(oj, bad), tmp_path / "in.csv")
    out = tmp_path / "out" / "scores.parquet"
    result = run_cli(
        "predict", "--model", str(model_dir), "--input", str(source), "--output", str(out),
        "--batch-rows", "100", "--id-column", "order_id",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    assert "in.csv line 900, column 'PriceCH': expected a number, got '1,99'" in error[0]
    assert "  also: " + str(source) + " line 901, column 'LoyalCH': missing value" in result.stderr
    # Eight batches were written before the bad one; none of it may be visible.
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["in.csv", "out"]


def test_failed_job_keeps_the_previous_output(
    tmp_path: Path, oj: pd.DataFrame, predictor: Predictor
) -> None:
    out = tmp_path / "scores.csv"
    out.write_text("previous result\n")
    source = write_csv(with_bad_cells(oj, {1000: ("LoyalCH", "high")}), tmp_path / "in.csv")
    with pytest.raises(InputError, match=r"line 1002, column 'LoyalCH'"):
        run_batch(predictor, str(source), str(out), batch_rows=50)
    assert out.read_text() == "previous result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "scores.csv"]


def test_skip_writes_good_rows_and_reports_the_bad_ones(
    tmp_path: Path, oj: pd.DataFrame, predictor: Predictor, model_dir: Path
) -> None:
    bad = {3: ("PriceCH", "abc"), 500: ("PriceMM", "inf"), 1069: ("LoyalCH", "")}
    source = write_csv(with_bad_cells(oj, bad), tmp_path / "in.csv")
    out, rejected = tmp_path / "scores.parquet", tmp_path / "rejected.csv"
    result = run_cli(
        "predict", "--model", str(model_dir), "--input", str(source), "--output", str(out),
        "--batch-rows", "256", "--id-column", "order_id", "--on-error", "skip",
        "--rejected", str(rejected),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "scored 1,067 rows" in result.stdout
    assert "skipped 3 bad row(s)" in result.stderr
    assert "in.csv line 5, column 'PriceCH': expected a number, got 'abc'" in result.stderr
    good = oj.drop(index=list(bad))
    assert_same_scores(pd.read_parquet(out), expected_scores(predictor, good))
    rows = pd.read_csv(rejected)
    assert rows["line"].tolist() == [5, 502, 1071]
    assert rows["row"].tolist() == [3, 500, 1069]
    assert (
        rows["error"]
        .str.startswith(("column 'PriceCH'", "column 'PriceMM'", "column 'LoyalCH'"))
        .all()
    )
    assert json.loads(rows["record"][0])["PriceCH"] == "abc"
    assert json.loads(rows["record"][2])["LoyalCH"] is None


def test_skip_finds_every_bad_row_when_a_batch_has_many(
    tmp_path: Path, oj: pd.DataFrame, predictor: Predictor
) -> None:
    bad = {row: ("PriceDiff", "n/a?") for row in range(100, 1070, 7)}  # 139 bad rows
    source = write_csv(with_bad_cells(oj, bad), tmp_path / "in.csv")
    out = tmp_path / "scores.parquet"
    result = run_batch(predictor, str(source), str(out), on_error="skip", id_column="order_id")
    assert result.rejected == len(bad) == 139
    assert len(result.problems) == REPORTED
    assert [p.line for p in result.problems] == [102, 109, 116, 123, 130]
    scored = pd.read_parquet(out)
    assert set(scored["order_id"]) == set(oj.drop(index=list(bad))["order_id"])


def test_missing_column_is_one_line_naming_it(
    tmp_path: Path, oj: pd.DataFrame, model_dir: Path
) -> None:
    source = write_csv(oj.drop(columns=["PriceCH"]), tmp_path / "in.csv")
    result = run_cli(
        "predict", "-m", str(model_dir), "-i", str(source), "-o", str(tmp_path / "o.csv")
    )
    assert result.exit_code == 1
    assert "required column(s) 'PriceCH' missing" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "o.csv").exists()


def test_malformed_line_fails_or_is_skipped(
    tmp_path: Path, oj: pd.DataFrame, predictor: Predictor
) -> None:
    lines = write_csv(oj, tmp_path / "clean.csv").read_text().splitlines()
    lines[40] += ",extra"
    source = tmp_path / "in.csv"
    source.write_text("\n".join(lines) + "\n")
    width = len(oj.columns)
    with pytest.raises(
        DataError, match=f"malformed line \\(expected {width} fields, got {width + 1}\\)"
    ):
        run_batch(predictor, str(source), str(tmp_path / "o.parquet"))
    assert not (tmp_path / "o.parquet").exists()
    result = run_batch(predictor, str(source), str(tmp_path / "o.parquet"), on_error="skip")
    assert (result.scored, result.rejected) == (1069, 1)


def test_object_store_output_appears_only_when_complete(
    oj: pd.DataFrame, predictor: Predictor
) -> None:
    fs = fsspec.filesystem("memory")
    root = f"memory://mlship-{id(oj)}"
    with fs.open(f"{root}/in/oj.parquet", "wb") as handle:
        oj.to_parquet(handle)
    broken = with_bad_cells(oj, {700: ("PriceMM", "?")})
    with fs.open(f"{root}/in-bad/oj.csv", "w") as handle:
        broken.to_csv(handle, index=False)
    try:
        run_batch(predictor, f"{root}/in", f"{root}/out/scores.parquet", batch_rows=100)
        with fs.open(f"{root}/out/scores.parquet", "rb") as handle:
            assert len(pd.read_parquet(handle)) == 1070
        with pytest.raises(InputError, match="line 702"):
            run_batch(predictor, f"{root}/in-bad", f"{root}/out/bad.parquet", batch_rows=100)
        assert fs.ls(f"{root}/out", detail=False) == [f"/mlship-{id(oj)}/out/scores.parquet"]
    finally:
        fs.rm(root, recursive=True)


def test_csv_text_is_read_as_training_read_it(
    tmp_path: Path, oj: pd.DataFrame, predictor: Predictor
) -> None:
    """Categories spelled as floats ("1.0", as pandas writes an int column with gaps) and
    numbers with padding score exactly like the original file."""
    text = oj.astype(object).copy()
    text["StoreID"] = oj["StoreID"].map(lambda v: f"{float(v)}")
    text["PriceCH"] = oj["PriceCH"].map(lambda v: f"{v:.6f}")
    source = write_csv(text, tmp_path / "in.csv")
    out = tmp_path / "o.parquet"
    run_batch(predictor, str(source), str(out), id_column="order_id")
    assert_same_scores(pd.read_parquet(out), expected_scores(predictor, oj))


def test_from_text_converts_cells_like_read_csv(predictor: Predictor) -> None:
    frame = pd.DataFrame(
        {
            "StoreID": ["7.0", "NA", "7", "A", None, "1e0", "2.5", "TRUE"],
            "PriceCH": ["1.5", "NA", "", "x", None, "2", "3", "4"],
            "PriceMM": ["1.5", "NA", "", "2", None, "2", "3", "4"],
        },
        dtype=object,
    )
    out = from_text(frame, predictor)
    assert out["StoreID"].tolist() == ["7", None, "7", "A", None, "1", "2.5", "True"]
    assert out["PriceCH"].tolist() == [
        "1.5",
        None,
        None,
        "x",
        None,
        "2",
        "3",
        "4",
    ]  # left for the predictor
    assert out["PriceMM"].dtype == "float64"


def test_empty_input_writes_an_empty_output(
    tmp_path: Path, oj: pd.DataFrame, predictor: Predictor
) -> None:
    source = write_csv(oj.head(0), tmp_path / "in.csv")
    out = tmp_path / "o.parquet"
    result = run_batch(predictor, str(source), str(out), id_column="order_id")
    assert result.rows == 0
    assert list(pd.read_parquet(out).columns) == ["order_id", "prediction", "proba_CH", "proba_MM"]


def test_an_output_that_is_a_directory_is_refused(
    tmp_path: Path, oj: pd.DataFrame, predictor: Predictor
) -> None:
    """Moving the finished file into an existing dir would hide it there as a dot-file."""
    source = write_csv(oj.head(20), tmp_path / "in.csv")
    (tmp_path / "scores").mkdir()
    for output in (tmp_path / "scores", f"{tmp_path / 'new'}/"):
        with pytest.raises(DataError, match="is a directory; name a file"):
            run_batch(predictor, str(source), str(output))
    assert list((tmp_path / "scores").iterdir()) == []


def test_an_unwritable_output_is_one_error(
    tmp_path: Path, oj: pd.DataFrame, predictor: Predictor
) -> None:
    source = write_csv(oj.head(20), tmp_path / "in.csv")
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="cannot write it"):
        run_batch(predictor, str(source), str(tmp_path / "file" / "scores.parquet"))


@pytest.mark.parametrize("name", ["in.tsv", "in.tsv.gz"])
def test_tsv_input_scores_like_csv(
    tmp_path: Path, oj: pd.DataFrame, predictor: Predictor, name: str
) -> None:
    source = tmp_path / name
    oj.head(50).to_csv(source, sep="\t", index=False)
    out = tmp_path / "out.parquet"
    run_batch(predictor, str(source), str(out), id_column="order_id")
    assert_same_scores(pd.read_parquet(out), expected_scores(predictor, oj.head(50)))
