"""``mlship evaluate`` on a model trained once (real MLflow SQLite store, real OJ data): scoring
the training holdout again reproduces the training metrics, the run is linked to the model
version, a broken floor exits 2 with one line, and errors are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlship.config import load_settings
from mlship.training import job
from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV, CliResult, run_cli


def evaluate(trained: Path, *args: str) -> CliResult:
    return run_cli(
        "evaluate", "--config", str(BASE_CONFIG), "--env-dir", str(ENV_DIR),
        "--tracking-uri", f"sqlite:///{trained / 'mlruns.db'}", *args,
    )  # fmt: skip


@pytest.fixture(scope="module")
def holdout_csv(trained_oj: Path) -> Path:
    """The training holdout rows as they were in the file (the model's own test set)."""
    settings = load_settings(BASE_CONFIG, None, [f"data.uri={OJ_CSV}"], ENV_DIR)
    data = job.prepare(settings, lambda _: None)
    path = trained_oj / "holdout.csv"
    data.raw.loc[data.parts.x_test.index].to_csv(path, index=False)
    return path


def test_the_holdout_again_gives_the_training_metrics(trained_oj: Path, holdout_csv: Path) -> None:
    result = evaluate(trained_oj, "--model", str(trained_oj / "model"), "--data", str(holdout_csv))
    assert result.exit_code == 0, result.output
    run_id = result.stdout.strip().splitlines()[-1].split()[-1]
    mlflow = MlflowClient(tracking_uri=f"sqlite:///{trained_oj / 'mlruns.db'}")
    run = mlflow.get_run(run_id)
    version = mlflow.get_model_version("oj-purchase", run.data.tags["mlship.model_version"])
    trained = mlflow.get_run(version.run_id).data.metrics
    for name in ("roc_auc", "accuracy", "log_loss", "f1"):
        assert run.data.metrics[name] == pytest.approx(trained[name], abs=1e-6)
        assert abs(run.data.metrics[f"delta_{name}"]) < 1e-6
    assert run.data.tags["mlship.model_run_id"] == version.run_id
    assert version.tags["mlship.last_evaluation_run"] == run_id
    assert run.data.params["data.rows"] == "214"


def test_a_broken_floor_exits_2_with_one_line(trained_oj: Path) -> None:
    result = evaluate(
        trained_oj, "--model", "models:/oj-purchase@candidate", "--data", str(OJ_CSV),
        "--fail-below", "roc_auc=0.99", "--fail-below", "accuracy=0.5",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith("error: roc_auc 0.9")
    assert lines[0].endswith("is below the floor 0.99")
    passing = evaluate(
        trained_oj, "--model", str(trained_oj / "model"), "--data", str(OJ_CSV),
        "--fail-below", "roc_auc=0.8", "--fail-above", "log_loss=0.6",
    )  # fmt: skip
    assert passing.exit_code == 0, passing.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-below", "roc_auc"], "error: metric bound 'roc_auc': expected METRIC=NUMBER"),
        (["--fail-below", "auc=0.9"], "error: metric bound 'auc': not a metric here"),
        (["--fail-below", "log_loss=0.3"], "error: metric bound 'log_loss': lower is better"),
    ],
)
def test_bad_bounds_are_one_line(trained_oj: Path, args: list[str], message: str) -> None:
    result = evaluate(
        trained_oj, "--model", str(trained_oj / "model"), "--data", str(OJ_CSV), *args
    )
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message)


def test_data_without_labels_is_one_line(trained_oj: Path, tmp_path: Path) -> None:
    import pandas as pd

    pd.read_csv(OJ_CSV).drop(columns=["Purchase"]).to_csv(tmp_path / "x.csv", index=False)
    result = evaluate(
        trained_oj, "--model", str(trained_oj / "model"), "--data", str(tmp_path / "x.csv")
    )
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: data: no target column 'Purchase' (the model's label) to evaluate on"
    )


def test_no_config_needed_with_tracking_uri_and_experiment(trained_oj: Path, workdir: Path) -> None:
    result = run_cli(
        "evaluate", "--model", str(trained_oj / "model"), "--data", str(OJ_CSV),
        "--tracking-uri", f"sqlite:///{trained_oj / 'mlruns.db'}", "--experiment", "oj-checks",
        "--config", str(workdir / "absent.yaml"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    mlflow = MlflowClient(tracking_uri=f"sqlite:///{trained_oj / 'mlruns.db'}")
    run = mlflow.get_run(result.stdout.strip().splitlines()[-1].split()[-1])
    assert mlflow.get_experiment(run.info.experiment_id).name == "oj-checks"
    assert run.data.tags["mlship.kind"] == "evaluation"
