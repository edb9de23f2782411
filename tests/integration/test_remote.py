"""``mlship train`` against real remote services: an MLflow server over HTTP and S3 (SeaweedFS).

Trainings are the expensive part (~15 s each here), so each one runs once per module in a
fixture and several tests assert on it. Each training uses its own experiment and registered
model name, so tests do not depend on each other's aliases or order.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import OJ_CSV, CliResult, run_cli, train_args
from tests.services import S3Service, closed_port_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUCKET = "mlship-it"
S3_KEY_PATH = "data/oj.csv"
PLOTS = {"roc_curve.png", "pr_curve.png", "confusion_matrix.png"}
SHA256 = re.compile(r"[0-9a-f]{64}")
# Without these MLflow's HTTP client retries a dead server for minutes (7 retries, backoff 2).
FAST_FAIL_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}


@dataclass(frozen=True)
class Trained:
    """One finished ``mlship train`` and where it put things."""

    cli: CliResult
    workdir: Path
    model_dir: Path
    info: dict[str, Any]  # the model dir's mlship.json

    @property
    def run_id(self) -> str:
        return str(self.info["run_id"])


@contextmanager
def _mlflow_state_restored() -> Iterator[None]:
    """Undo what in-process training leaves behind: ``mlflow.set_tracking_uri`` sets both
    MLflow's global URI and ``os.environ["MLFLOW_TRACKING_URI"]``."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield
    finally:
        import mlflow

        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None resets (and unsets env)
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture(autouse=True)
def _restore_mlflow_state() -> Iterator[None]:
    with _mlflow_state_restored():
        yield


def _train_in(workdir: Path, *overrides: str) -> CliResult:
    """Run ``mlship train`` with ``workdir`` as cwd and a clean tracking environment."""
    with _mlflow_state_restored(), pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLSHIP_ENV", raising=False)
        return run_cli(*train_args(workdir, *overrides))


def _finished(cli: CliResult, workdir: Path) -> Trained:
    assert cli.exit_code == 0, cli.output
    model_dir = workdir / "model"
    info = json.loads((model_dir / "mlship.json").read_text())
    return Trained(cli, workdir, model_dir, info)


def _client(url: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=url)


def _error_lines(cli: CliResult) -> list[str]:
    return [line for line in cli.output.splitlines() if line.startswith("error:")]


def _storage_options(s3: S3Service) -> str:
    return "data.storage_options=" + json.dumps(s3.storage_options)


# ---------------------------------------------------------------------------------------------
# fixtures: one training per route


@pytest.fixture(scope="module")
def server_run(mlflow_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The default OJ config trained once against the real server (``tracking.uri=<url>``)."""
    workdir = tmp_path_factory.mktemp("server-run")
    return _finished(_train_in(workdir, f"tracking.uri={mlflow_server_url}"), workdir)


@pytest.fixture(scope="module")
def s3_uri(s3_service: S3Service) -> str:
    """data/oj.csv uploaded to the S3 store."""
    return s3_service.upload(BUCKET, S3_KEY_PATH, OJ_CSV)


@pytest.fixture(scope="module")
def s3_run(
    s3_service: S3Service,
    s3_uri: str,
    mlflow_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Trained:
    """The default config trained from ``s3://`` (tracked on the server, its own model name)."""
    workdir = tmp_path_factory.mktemp("s3-run")
    cli = _train_in(
        workdir,
        f"data.uri={s3_uri}",
        _storage_options(s3_service),
        f"tracking.uri={mlflow_server_url}",
        "tracking.experiment=oj-s3",
        "tracking.registered_model=oj-purchase-s3",
    )
    return _finished(cli, workdir)


# ---------------------------------------------------------------------------------------------
# MLflow server over HTTP


def test_server_run_has_metrics_params_and_tags(
    server_run: Trained, mlflow_server_url: str
) -> None:
    client = _client(mlflow_server_url)
    run = client.get_run(server_run.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "oj-purchase"

    metrics = run.data.metrics
    assert {"accuracy", "roc_auc", "pr_auc", "log_loss", "f1"} <= set(metrics)
    assert metrics["roc_auc"] >= 0.85
    assert 0.0 < metrics["log_loss"] < 0.69  # better than a coin flip

    params = run.data.params
    assert params["model.name"] == "logistic_regression"
    assert params["split.seed"] == "42"
    assert params["tracking.uri"] == mlflow_server_url
    assert int(params["data.rows_train"]) + int(params["data.rows_test"]) == len(
        pd.read_csv(OJ_CSV)
    )

    tags = run.data.tags
    assert SHA256.fullmatch(tags["data.sha256"])
    assert tags["data.uri"] == str(OJ_CSV)
    assert tags["mlship.algorithm"] == "logistic_regression"
    if "git.commit" in tags:  # absent when trained outside a git checkout (as here)
        assert re.fullmatch(r"[0-9a-f]{40}", tags["git.commit"])
    assert run.inputs.dataset_inputs, "the training data was not logged as a run input"


def test_server_run_has_plots_and_config(server_run: Trained, mlflow_server_url: str) -> None:
    client = _client(mlflow_server_url)
    plots = {Path(a.path).name: a for a in client.list_artifacts(server_run.run_id, "plots")}
    assert set(plots) >= PLOTS
    assert all(plots[name].file_size and plots[name].file_size > 1000 for name in PLOTS)

    import mlflow

    png = mlflow.artifacts.download_artifacts(
        run_id=server_run.run_id,
        artifact_path="plots/roc_curve.png",
        dst_path=str(server_run.workdir / "downloaded"),
        tracking_uri=mlflow_server_url,
    )
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    resolved = client.download_artifacts(
        server_run.run_id, "config/resolved.yaml", str(server_run.workdir / "cfg")
    )
    assert "logistic_regression" in Path(resolved).read_text()


def test_server_run_registered_with_candidate_alias(
    server_run: Trained, mlflow_server_url: str
) -> None:
    client = _client(mlflow_server_url)
    version = client.get_model_version_by_alias("oj-purchase", "candidate")
    assert version.run_id == server_run.run_id
    assert str(version.version) == server_run.info["version"]
    run = client.get_run(server_run.run_id)
    assert run.data.tags["registered_model.version"] == str(version.version)


def test_server_run_exported_model_dir(server_run: Trained, mlflow_server_url: str) -> None:
    model_dir = server_run.model_dir
    assert (model_dir / "MLmodel").is_file()
    assert (model_dir / "mlship.json").is_file()
    info = server_run.info
    client = _client(mlflow_server_url)
    run = client.get_run(info["run_id"])  # the id names a real run on the server
    assert run.info.run_id == info["run_id"]
    assert info["name"] == "oj-purchase"
    assert info["tracking_uri"] == mlflow_server_url
    assert info["metrics"] == pytest.approx(run.data.metrics)
    assert json.loads((model_dir / "metrics.json").read_text()) == pytest.approx(run.data.metrics)
    # No half-written siblings left beside the model dir.
    assert not [p for p in server_run.workdir.iterdir() if p.name.startswith(".model.")]

    # The exported dir is a working model: it scores rows of the training table.
    from mlship.scoring.predictor import Predictor

    rows = pd.read_csv(OJ_CSV).head(5).drop(columns=["Purchase"])
    scored = Predictor.load(model_dir).predict_frame(rows)
    assert len(scored.predictions) == 5
    assert set(map(str, scored.predictions)) <= {"CH", "MM"}
    assert scored.probabilities is not None
    assert scored.probabilities.sum(axis=1) == pytest.approx([1.0] * 5)


def test_tracking_uri_from_env_var(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, mlflow_server_url: str
) -> None:
    """``tracking.uri: null`` + ``MLFLOW_TRACKING_URI`` -> the run goes to that server."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_url)
    cli = run_cli(
        *train_args(
            workdir,
            "tracking.uri=null",
            "tracking.experiment=oj-env-route",
            "tracking.registered_model=oj-purchase-env",
        )
    )
    trained = _finished(cli, workdir)
    assert trained.info["tracking_uri"] == mlflow_server_url
    assert not list(workdir.glob("*.db")), "a local SQLite store was used instead of the server"
    assert not (workdir / "mlruns").exists()

    client = _client(mlflow_server_url)
    run = client.get_run(trained.run_id)
    assert client.get_experiment(run.info.experiment_id).name == "oj-env-route"
    assert run.data.metrics["roc_auc"] >= 0.85
    version = client.get_model_version_by_alias("oj-purchase-env", "candidate")
    assert version.run_id == trained.run_id


def test_unreachable_tracking_server_fails_fast_and_cleanly(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in FAST_FAIL_HTTP.items():
        monkeypatch.setenv(key, value)
    dead = closed_port_url()
    started = time.monotonic()
    cli = run_cli(*train_args(workdir, f"tracking.uri={dead}"))
    elapsed = time.monotonic() - started

    assert cli.exit_code == 1, cli.output
    errors = _error_lines(cli)
    assert len(errors) == 1, cli.output
    assert "tracking.uri" in errors[0] and dead in errors[0], errors[0]
    assert "Traceback" not in cli.output
    assert not (workdir / "model").exists()
    assert not [p for p in workdir.iterdir() if p.name.startswith(".model.")]
    assert elapsed < 60, f"took {elapsed:.0f}s to give up on a closed port"


# ---------------------------------------------------------------------------------------------
# S3 (SeaweedFS)


def test_s3_upload_is_readable(s3_service: S3Service, s3_uri: str) -> None:
    """The store itself works: what we uploaded reads back identical through s3fs."""
    remote = pd.read_csv(s3_uri, storage_options=s3_service.storage_options)
    pd.testing.assert_frame_equal(remote, pd.read_csv(OJ_CSV))


def test_train_from_s3_matches_local_file(
    s3_run: Trained, server_run: Trained, s3_uri: str, mlflow_server_url: str
) -> None:
    assert s3_run.info["metrics"]["roc_auc"] >= 0.85
    # Same bytes, same split and seed: the very same model quality as from the local file.
    assert s3_run.info["metrics"] == pytest.approx(server_run.info["metrics"], rel=1e-12)
    assert (s3_run.model_dir / "MLmodel").is_file()

    client = _client(mlflow_server_url)
    remote = client.get_run(s3_run.run_id).data
    local = client.get_run(server_run.run_id).data
    assert remote.tags["data.uri"] == s3_uri
    assert remote.tags["data.sha256"] == local.tags["data.sha256"]
    for key in ("data.rows_train", "data.rows_test", "split.seed"):
        assert remote.params[key] == local.params[key]


def test_s3_secret_is_not_recorded(
    s3_run: Trained, s3_service: S3Service, mlflow_server_url: str
) -> None:
    secret = s3_service.secret
    client = _client(mlflow_server_url)
    params = client.get_run(s3_run.run_id).data.params
    leaked = [k for k, v in params.items() if secret in v]
    assert not leaked, f"secret logged in params {leaked}"
    for path in s3_run.model_dir.rglob("*"):
        if path.is_file() and path.suffix in {".yaml", ".json", ".txt", ""}:
            assert secret not in path.read_text(errors="replace"), f"secret in {path}"


@pytest.mark.parametrize(
    "uri",
    [f"s3://{BUCKET}/data/missing.csv", "s3://mlship-no-such-bucket/oj.csv"],
    ids=["missing-key", "missing-bucket"],
)
@pytest.mark.usefixtures("s3_uri")
def test_missing_s3_object_is_one_clear_error(
    workdir: Path, s3_service: S3Service, uri: str
) -> None:
    cli = run_cli(*train_args(workdir, f"data.uri={uri}", _storage_options(s3_service)))
    assert cli.exit_code == 1, cli.output
    errors = _error_lines(cli)
    assert len(errors) == 1, cli.output
    assert "data.uri" in errors[0] and uri in errors[0], errors[0]
    assert "Traceback" not in cli.output
    assert not (workdir / "model").exists()
    assert not [p for p in workdir.iterdir() if p.name.startswith(".model.")]
