"""``mlship compare`` with the real CLI and MLflow SQLite store: every algorithm on the same
split and the same folds (its CV equals training's own cross-validation), one run each, one
table logged on the parent, latency measured with the runtime the model will serve with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlship.config import load_settings
from mlship.training import job
from mlship.training.evaluate import cross_validate
from mlship.training.pipeline import build_pipeline
from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV, run_cli

SETTINGS = ["model.params.random_forest.n_estimators=20"]


def compare_args(work: Path, *extra: str) -> list[str]:
    return [
        "compare", "--config", str(BASE_CONFIG), "--env-dir", str(ENV_DIR),
        f"data.uri={OJ_CSV}", f"tracking.uri=sqlite:///{work / 'mlruns.db'}", *SETTINGS, *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        args = compare_args(
            work, "-a", "logistic_regression", "-a", "random_forest", "--folds", "3", "--markdown"
        )
        result = run_cli(*args)
    assert result.exit_code == 0, result.output
    return work, result.stdout


def test_one_run_per_algorithm_and_the_table_on_the_parent(compared: tuple[Path, str]) -> None:
    work, stdout = compared
    assert "logistic_regression" in stdout and "random_forest" in stdout
    parent = stdout.strip().splitlines()[-1].split()[2]
    mlflow = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlruns.db'}")
    experiment = mlflow.get_experiment_by_name("oj-purchase").experiment_id
    runs = mlflow.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(r.data.tags["mlship.algorithm"] for r in runs) == [
        "logistic_regression",
        "random_forest",
    ]
    local = mlflow.download_artifacts(parent, "compare/table.json", str(work))
    table = json.loads(Path(local).read_text())
    assert [row["algorithm"] for row in table] == ["logistic_regression", "random_forest"]
    for row, run in zip(
        table, sorted(runs, key=lambda r: r.data.tags["mlship.algorithm"]), strict=True
    ):
        assert row["run_id"] == run.info.run_id
        assert row["roc_auc"] == run.data.metrics["roc_auc"]
        assert row["runtime"] == run.data.tags["serving.runtime"] == "onnx"  # both pass parity
        assert 0 < row["latency_row_ms"] < 1000 and row["fit_seconds"] > 0
    assert mlflow.search_registered_models() == []  # comparing registers nothing


def test_cv_is_trainings_own_cross_validation_on_the_same_folds(compared: tuple[Path, str]) -> None:
    work, stdout = compared
    settings = load_settings(
        BASE_CONFIG, None, [f"data.uri={OJ_CSV}", *SETTINGS, "split.cv_folds=3"], ENV_DIR
    )
    data = job.prepare(settings, lambda _: None)
    model = build_pipeline(
        data.dataset.numeric, data.dataset.categorical, settings.model, settings.task, 42
    )
    expected = cross_validate(model, data.parts, settings.task, settings.split)
    mlflow = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlruns.db'}")
    experiment = mlflow.get_experiment_by_name("oj-purchase").experiment_id
    run = mlflow.search_runs(
        [experiment], filter_string="tags.`mlship.algorithm` = 'logistic_regression'"
    )[0]
    assert run.data.metrics["cv_roc_auc_mean"] == pytest.approx(
        expected["cv_roc_auc_mean"], abs=1e-12
    )
    assert run.data.metrics["cv_accuracy_std"] == pytest.approx(
        expected["cv_accuracy_std"], abs=1e-12
    )
    assert f"{expected['cv_roc_auc_mean']:.4f}" in stdout


def test_an_unknown_algorithm_is_one_line(workdir: Path) -> None:
    result = run_cli(*compare_args(workdir, "-a", "ridge"))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: algorithm 'ridge': not one for classification (logistic_regression, "
        "random_forest, hist_gradient_boosting, lightgbm, xgboost)"
    ]
