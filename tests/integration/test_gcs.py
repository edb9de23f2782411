"""``gs://`` for real: the CLI against a local Google Cloud Storage emulator (JSON API).

Every command runs as a user would run it: the ``mlship`` console script in a subprocess whose
environment names the emulator the standard way (``STORAGE_EMULATOR_HOST``, honoured by gcsfs
and by google-cloud-storage, which MLflow's ``gs://`` artifact store uses). One training (the
prod overlay as shipped: data from ``gs://mlship-prod-data/oj/oj.csv``, MLflow artifacts in a
bucket) feeds every test in the module; ``mlship bundle`` then reads the model back from a bucket.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV
from tests.services import GCS_ENV_FLAGS, GCSService, executable, gcs_emulator

pytest.importorskip("gcsfs")
pytestmark = [pytest.mark.integration, pytest.mark.slow]

DATA_BUCKET = "mlship-prod-data"  # configs/env/prod.yaml: data.uri
DATA_KEY = "oj/oj.csv"
ARTIFACT_BUCKET = "mlship-prod-artifacts"
SCORES_BUCKET = "mlship-scores"
EXPERIMENT = "oj-purchase"  # configs/base.yaml: tracking.experiment
# A whole `mlship predict` of 1,070 rows takes ~4 s here. Committing the output with gcsfs's
# `mv` would add ~30 s of retries against the emulator (no `moveTo` API).
PREDICT_BUDGET_S = 20.0


@dataclass(frozen=True)
class Env:
    gcs: GCSService
    work: Path
    vars: dict[str, str]

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [executable(args[0]), *args[1:]],
            cwd=self.work,
            env=self.vars,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("gcs")
    with gcs_emulator(work / "emulator", bucket=DATA_BUCKET) as gcs:
        variables = {
            **os.environ,
            **gcs.env,
            **GCS_ENV_FLAGS,
            "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlruns.db'}",
        }
        variables.pop("MLSHIP_ENV", None)
        yield Env(gcs, work, variables)


@pytest.fixture(scope="module")
def trained(env: Env) -> Path:
    """``mlship train --env prod``: data and MLflow artifacts both in buckets."""
    env.gcs.upload(DATA_BUCKET, DATA_KEY, OJ_CSV)
    env.gcs.create_bucket(ARTIFACT_BUCKET)
    # How an operator points an experiment's artifacts at a bucket (a tracking server would
    # take --default-artifact-root gs://...).
    made = env.run(
        "mlflow", "experiments", "create", "--experiment-name", EXPERIMENT,
        "--artifact-location", f"gs://{ARTIFACT_BUCKET}/mlflow",
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    model_dir = env.work / "model"
    result = env.run(
        "mlship", "train", "--config", str(BASE_CONFIG), "--env-dir", str(ENV_DIR),
        "--env", "prod", f"output.model_dir={model_dir}",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"reading gs://{DATA_BUCKET}/{DATA_KEY}" in result.stderr + result.stdout
    return model_dir


def test_train_reads_gs_and_logs_mlflow_artifacts_to_a_bucket(env: Env, trained: Path) -> None:
    assert (trained / "MLmodel").is_file()
    artifacts = env.gcs.keys(ARTIFACT_BUCKET, "mlflow")
    names = {key.rsplit("/", 1)[-1] for key in artifacts}
    assert {"MLmodel", "model.onnx", "onnx_parity.json", "roc_curve.png", "resolved.yaml"} <= names
    # The exported model dir came back out of the bucket (models:/ resolves through it).
    onnx = next(key for key in artifacts if key.endswith("extra_files/model.onnx"))
    stored = env.gcs.fs().cat_file(f"{ARTIFACT_BUCKET}/{onnx}")
    assert (trained / "extra_files" / "model.onnx").read_bytes() == stored
    assert (trained / "config.yaml").is_file()  # the run's resolved config, also from gs://


def _scores(env: Env, uri: str) -> pd.DataFrame:
    with env.gcs.fs().open(uri.removeprefix("gs://"), "rb") as handle:
        return pd.read_parquet(io.BytesIO(handle.read()))


def test_predict_streams_gs_to_gs_like_local(env: Env, trained: Path) -> None:
    local_out = env.work / "local.parquet"
    local = env.run(
        "mlship", "predict", "-m", str(trained), "-i", str(OJ_CSV), "-o", str(local_out)
    )
    assert local.returncode == 0, local.stderr

    output = f"gs://{SCORES_BUCKET}/day=1/scores.parquet"
    env.gcs.create_bucket(SCORES_BUCKET)
    start = time.monotonic()
    remote = env.run(
        "mlship", "predict", "-m", str(trained), "-i", f"gs://{DATA_BUCKET}/oj/",
        "-o", output, "--batch-rows", "256",
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert remote.returncode == 0, remote.stderr
    assert f"scored 1,070 rows -> {output}" in remote.stdout
    assert elapsed < PREDICT_BUDGET_S, f"gs:// commit took {elapsed:.1f}s (mv retries?)"
    assert env.gcs.keys(SCORES_BUCKET, "day=1") == ["day=1/scores.parquet"]  # no temp object
    pd.testing.assert_frame_equal(_scores(env, output), pd.read_parquet(local_out))


def test_a_mid_stream_failure_leaves_no_object_and_keeps_the_old_one(
    env: Env, trained: Path
) -> None:
    env.gcs.create_bucket(SCORES_BUCKET)
    frame = pd.read_csv(OJ_CSV).astype(object)
    frame.loc[950, "PriceCH"] = "n/a?"  # batches 1-9 score and are written first
    bad = env.work / "bad.csv"
    frame.to_csv(bad, index=False)
    source = env.gcs.upload(DATA_BUCKET, "bad/oj.csv", bad)

    fresh = f"gs://{SCORES_BUCKET}/day=2/scores.parquet"
    failed = env.run("mlship", "predict", "-m", str(trained), "-i", source, "-o", fresh,
                     "--batch-rows", "100")  # fmt: skip
    assert failed.returncode == 1
    assert "line 952, column 'PriceCH'" in failed.stdout + failed.stderr
    assert env.gcs.keys(SCORES_BUCKET, "day=2") == []

    before = b"yesterday's scores"  # the writer must leave whatever is there untouched
    env.gcs.fs().pipe_file(fresh.removeprefix("gs://"), before)
    again = env.run("mlship", "predict", "-m", str(trained), "-i", source, "-o", fresh,
                    "--batch-rows", "100")  # fmt: skip
    assert again.returncode == 1
    assert env.gcs.keys(SCORES_BUCKET, "day=2") == ["day=2/scores.parquet"]
    assert env.gcs.fs().cat_file(fresh.removeprefix("gs://")) == before


def test_bundle_reads_the_model_from_a_bucket(env: Env, trained: Path) -> None:
    source = env.gcs.upload_dir("mlship-models", "oj-purchase/1", trained)
    output = env.work / "oj-purchase-1.tar.gz"
    made = env.run("mlship", "bundle", "--model", source, "--output", str(output), timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "bundled oj-purchase v1 (runtime onnx" in made.stdout
    with tarfile.open(output) as archive:
        handle = archive.extractfile("oj-purchase-1/SHA256SUMS")
        assert handle is not None
        sums = dict(line.split("  ", 1)[::-1] for line in handle.read().decode().splitlines())
    local = {
        f"model/{p.relative_to(trained).as_posix()}": hashlib.sha256(p.read_bytes()).hexdigest()
        for p in trained.rglob("*")
        if p.is_file()
    }
    assert {k: v for k, v in sums.items() if k.startswith("model/")} == local
