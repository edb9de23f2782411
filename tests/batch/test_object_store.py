"""Batch scoring against a real S3 endpoint (SeaweedFS on loopback): read a prefix, write the
output as a temp key that is copied into place, and leave no key at all when a job fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from mlship.scoring.predictor import Predictor
from mlship.scoring.problems import InputError
from tests.batch.conftest import assert_same_scores, expected_scores, run_batch
from tests.batch.test_streaming import with_bad_cells, write_csv
from tests.conftest import run_cli
from tests.services import S3Service, seaweedfs_s3

pytest.importorskip("s3fs")
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Service]:
    with seaweedfs_s3(tmp_path_factory.mktemp("seaweedfs-batch")) as service:
        yield service


def keys(s3: S3Service, bucket: str, prefix: str) -> list[str]:
    listed = s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_prefix_in_object_out_and_failures_leave_no_key(
    s3: S3Service, tmp_path: Path, oj: pd.DataFrame, predictor: Predictor
) -> None:
    oj.iloc[:500].to_parquet(tmp_path / "a.parquet")
    oj.iloc[500:].to_parquet(tmp_path / "b.parquet")
    s3.upload("scores", "in/part-a.parquet", tmp_path / "a.parquet")
    s3.upload("scores", "in/part-b.parquet", tmp_path / "b.parquet")
    options = s3.storage_options
    result = run_batch(
        predictor, "s3://scores/in/", "s3://scores/out/oj.parquet", batch_rows=128,
        id_column="order_id", storage_options=options,
    )  # fmt: skip
    assert result.rows == 1070
    scored = pd.read_parquet("s3://scores/out/oj.parquet", storage_options=options)
    assert_same_scores(scored, expected_scores(predictor, oj))

    bad = write_csv(with_bad_cells(oj, {950: ("SalePriceMM", "n/a?")}), tmp_path / "bad.csv")
    s3.upload("scores", "in-bad/oj.csv", bad)
    with pytest.raises(InputError, match=r"oj\.csv line 952, column 'SalePriceMM'"):
        run_batch(
            predictor, "s3://scores/in-bad/oj.csv", "s3://scores/out/bad.parquet",
            batch_rows=100, storage_options=options,
        )  # fmt: skip
    assert keys(s3, "scores", "out/") == ["out/oj.parquet"]  # no output, no temp key


def test_cli_with_endpoint_from_the_environment(
    s3: S3Service, tmp_path: Path, oj: pd.DataFrame, model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The CLI has no storage options: an S3-compatible store is named the standard way."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3.region)
    source = s3.upload(
        "cli",
        "in/oj.csv",
        write_csv(with_bad_cells(oj, {7: ("PriceCH", "x")}), tmp_path / "oj.csv"),
    )
    result = run_cli(
        "predict", "-m", str(model_dir), "-i", source, "-o", "s3://cli/out/scores.csv",
        "--id-column", "order_id", "--on-error", "skip", "--rejected", "s3://cli/out/rejected.csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert keys(s3, "cli", "out/") == ["out/rejected.csv", "out/scores.csv"]
    rejected = pd.read_csv("s3://cli/out/rejected.csv", storage_options=s3.storage_options)
    assert rejected["line"].tolist() == [9]
