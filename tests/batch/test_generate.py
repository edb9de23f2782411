"""The scale-test data generator: seeded, streamed in chunks, shaped like its source."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from benchmarks.generate_data import generate
from mlship.scoring.predictor import Predictor
from tests.batch.conftest import run_batch
from tests.conftest import OJ_CSV


def test_same_seed_same_rows_written_chunk_by_chunk(tmp_path: Path) -> None:
    source = pd.read_csv(OJ_CSV)
    first, again, other = (tmp_path / f"{n}.parquet" for n in ("first", "again", "other"))
    assert generate(source, 2500, first, seed=1, chunk_rows=1000) == 2500
    generate(source, 2500, again, seed=1, chunk_rows=1000)
    generate(source, 2500, other, seed=2, chunk_rows=1000)
    assert pq.ParquetFile(first).metadata.num_row_groups == 3  # one per chunk
    pd.testing.assert_frame_equal(pd.read_parquet(first), pd.read_parquet(again))
    assert not pd.read_parquet(first).equals(pd.read_parquet(other))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_rows_look_like_the_source(tmp_path: Path) -> None:
    source = pd.read_csv(OJ_CSV)
    out = tmp_path / "big.parquet"
    generate(source, 3000, out, seed=0, noise=0.01)
    rows = pd.read_parquet(out)
    assert list(rows.columns) == ["row_id", *source.columns]
    assert rows["row_id"].tolist() == list(range(3000))
    for column in source.columns:
        if source[column].dtype.kind == "f":  # noisy but close
            assert abs(rows[column].mean() - source[column].mean()) < 0.1 * (
                source[column].std() + 1e-9
            )
        else:  # ids, categories and labels are values the source has
            assert set(rows[column]) <= set(source[column])


def test_generated_csv_scores_cleanly(tmp_path: Path, predictor: Predictor) -> None:
    out = tmp_path / "rows.csv"
    generate(pd.read_csv(OJ_CSV), 1500, out, seed=3, chunk_rows=400)
    result = run_batch(predictor, str(out), str(tmp_path / "scores.parquet"), id_column="row_id")
    assert (result.rows, result.rejected) == (1500, 0)
