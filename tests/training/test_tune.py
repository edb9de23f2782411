"""``mlship tune`` on OJ with the real CLI, a real MLflow SQLite store and Optuna SQLite study:
nested trial runs, plots on the parent, an overlay that equals the printed overrides, the same
seed giving the same best params, resuming a study, ``--train`` registering a candidate."""

from __future__ import annotations

from pathlib import Path

import yaml
from mlflow import MlflowClient

from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV, run_cli

FAST = ["tune.cv_folds=2", "data.sample.fraction=0.5"]


def tune_args(work: Path, *extra: str, study: str = "s", db: str = "optuna.db") -> list[str]:
    return [
        "tune", "--config", str(BASE_CONFIG), "--env-dir", str(ENV_DIR),
        f"data.uri={OJ_CSV}", f"tracking.uri=sqlite:///{work / 'mlruns.db'}",
        f"output.model_dir={work / 'model'}", f"tune.overlay={work / 'tuned.yaml'}",
        "--storage", f"sqlite:///{work / db}", "--study-name", study, *FAST, *extra,
    ]  # fmt: skip


def children(work: Path, parent: str) -> list[object]:
    mlflow = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlruns.db'}")
    experiment = mlflow.get_experiment_by_name("oj-purchase").experiment_id
    return list(
        mlflow.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    )


def parent_of(output: str) -> str:
    return next(line.split()[-1] for line in output.splitlines() if line.startswith("parent run:"))


def overrides_of(output: str) -> list[str]:
    line = next(line for line in output.splitlines() if line.startswith("overrides: "))
    return line.removeprefix("overrides: ").split()


def test_trials_are_nested_runs_and_the_overlay_matches_the_overrides(workdir: Path) -> None:
    result = run_cli(*tune_args(workdir, "--trials", "6", "--seed", "3"))
    assert result.exit_code == 0, result.output
    runs = children(workdir, parent_of(result.stdout))
    assert len(runs) == 6
    for run in runs:
        assert run.data.tags["optuna.state"] in {"COMPLETE", "PRUNED"}
        assert "model.params.logistic_regression.C" in run.data.params
        assert "cv_roc_auc_mean" in run.data.metrics and "cv_log_loss_std" in run.data.metrics
    mlflow = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlruns.db'}")
    parent = parent_of(result.stdout)
    plots = {a.path for a in mlflow.list_artifacts(parent, "plots")}
    assert plots == {"plots/optimization_history.png", "plots/param_importances.png"}
    assert {a.path for a in mlflow.list_artifacts(parent, "study")} == {
        "study/param_importances.json", "study/trials.csv",
    }  # fmt: skip
    # The best value is the best completed trial's CV mean, never a holdout figure.
    best = max(
        r.data.metrics["cv_roc_auc_mean"] for r in runs if r.data.tags["optuna.state"] == "COMPLETE"
    )
    assert mlflow.get_run(parent).data.metrics["best_cv_roc_auc"] == best
    overlay = yaml.safe_load((workdir / "tuned.yaml").read_text())
    params = overlay["model"]["params"]["logistic_regression"]
    printed = overrides_of(result.stdout)
    assert printed[0] == "model.name=logistic_regression" and len(printed) == 3
    for text in printed[1:]:
        key, _, value = text.partition("=")
        assert params[key.rsplit(".", 1)[1]] == yaml.safe_load(value)
    assert params["max_iter"] == 1000  # params outside the space keep their config value


def test_same_seed_same_best_params_and_a_study_resumes(workdir: Path) -> None:
    first = run_cli(*tune_args(workdir, "--trials", "4", study="a", db="a.db"))
    again = run_cli(*tune_args(workdir, "--trials", "4", study="b", db="b.db"))
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert overrides_of(first.stdout) == overrides_of(again.stdout)
    resumed = run_cli(*tune_args(workdir, "--trials", "2", study="a", db="a.db"))
    assert resumed.exit_code == 0, resumed.output
    assert "after 2 trials" in resumed.stdout and "6 in study 'a'" in resumed.stdout


def test_train_registers_the_tuned_model_as_candidate(workdir: Path) -> None:
    result = run_cli(*tune_args(workdir, "--trials", "3", "--train"))
    assert result.exit_code == 0, result.output
    mlflow = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlruns.db'}")
    version = mlflow.get_model_version_by_alias("oj-purchase", "candidate")
    run = mlflow.get_run(version.run_id)
    assert run.data.tags["mlship.tune_parent_run"] == parent_of(result.stdout)
    tuned = overrides_of(result.stdout)[1].partition("=")
    assert run.data.params[tuned[0]] == str(yaml.safe_load(tuned[2]))
    assert (workdir / "model" / "MLmodel").is_file()


def test_errors_are_one_line(workdir: Path) -> None:
    same = run_cli(*tune_args(workdir, "--storage", f"sqlite:///{workdir / 'mlruns.db'}"))
    assert same.exit_code == 1
    assert (
        same.stderr.strip().startswith("error: tune.storage") and "alembic_version" in same.stderr
    )
    assert len(same.stderr.strip().splitlines()) == 1
    metric = run_cli(*tune_args(workdir, "tune.metric=rmse"))
    assert metric.exit_code == 1 and metric.stderr.strip().startswith(
        "error: tune.metric 'rmse': not a classification metric (accuracy, "
    )
    assert not (workdir / "mlruns.db").exists()  # refused before any run or data
    raw = yaml.safe_load(BASE_CONFIG.read_text())
    del raw["tune"]
    (workdir / "bare.yaml").write_text(yaml.safe_dump(raw))
    args = tune_args(workdir)
    args[args.index(str(BASE_CONFIG))] = str(workdir / "bare.yaml")
    nospace = run_cli(*args)
    assert nospace.exit_code == 1
    assert nospace.stderr.strip() == (
        "error: tune.space.logistic_regression: no search space for 'logistic_regression' "
        "(spaces: none)"
    )
