"""Calibration: the Brier score and reliability curve every classifier logs, and
``model.calibration`` (sigmoid, isotonic) trained, compiled or refused, and served."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from mlship.config import load_settings
from mlship.errors import ConfigError
from mlship.model.saved import SavedModel
from mlship.scoring.predictor import Predictor
from mlship.serving.app import create_app
from mlship.serving.settings import ServeSettings
from mlship.training.calibration import brier, reliability, write_reliability
from mlship.training.compile import compile_onnx
from mlship.training.data import prepare, split
from mlship.training.evaluate import _figure
from mlship.training.pipeline import build_pipeline
from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV, ROOT, run_cli, train_args

DIABETES = ROOT / "configs" / "examples" / "diabetes.yaml"


def test_brier_binary_is_sklearns_and_multiclass_the_mean_one_vs_rest() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([1, 1, 1], size=400)
    truth = np.asarray(["a", "b", "c"], dtype=object)[rng.integers(0, 3, 400)]
    per_class = [brier_score_loss(truth == c, proba[:, i]) for i, c in enumerate("abc")]
    assert brier(truth, proba, ["a", "b", "c"], None) == pytest.approx(np.mean(per_class))
    two = np.c_[1 - proba[:, 0], proba[:, 0]]
    hit = np.where(truth == "a", "yes", "no")
    got = brier(hit, two, ["no", "yes"], "yes")
    assert got == pytest.approx(brier_score_loss(hit == "yes", two[:, 1]))


def test_the_reliability_points_are_calibration_curves(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    p = rng.random(500)
    truth = np.where(rng.random(500) < p, "MM", "CH")
    proba = np.c_[1 - p, p]
    table = reliability(truth, proba, ["CH", "MM"], "MM")
    observed, predicted = calibration_curve(truth == "MM", p, n_bins=10)
    assert np.allclose(table["fraction_positive"], observed)
    assert np.allclose(table["mean_predicted"], predicted)
    assert table["rows"].sum() == 500 and set(table["class"]) == {"MM"}
    png, csv = write_reliability(truth, proba, ["CH", "MM"], "MM", tmp_path, _figure)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.read_csv(csv).equals(pd.read_csv(csv))  # readable as written
    assert list(pd.read_csv(csv).columns) == [
        "class", "bin", "mean_predicted", "fraction_positive", "rows",
    ]  # fmt: skip


def test_calibrating_a_regressor_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"config key model: .*model\.calibration .*regression"):
        load_settings(DIABETES, None, ["model.calibration=isotonic"], ENV_DIR)
    with pytest.raises(ConfigError, match=r"config key model\.calibration:"):
        load_settings(BASE_CONFIG, None, ["model.calibration=platt"], ENV_DIR)


def _fitted(name: str, method: str) -> tuple[object, list[str], list[str], pd.DataFrame]:
    overrides = [f"data.uri={OJ_CSV}", f"model.name={name}", f"model.calibration={method}"]
    settings = load_settings(BASE_CONFIG, None, overrides, ENV_DIR)
    dataset = prepare(pd.read_csv(OJ_CSV), settings)
    parts = split(dataset, settings.split, settings.task)
    model = build_pipeline(dataset.numeric, dataset.categorical, settings.model, settings.task, 42)
    model.fit(parts.x_train, parts.y_train)
    return model, dataset.numeric, dataset.categorical, dataset.features


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "method", "passed", "reason"),
    [
        ("logistic_regression", "sigmoid", True, "ok"),
        ("random_forest", "sigmoid", True, "ok"),
        ("logistic_regression", "isotonic", False, "isotonic calibration"),
        ("hist_gradient_boosting", "sigmoid", False, "decision_function"),
    ],
)
def test_a_calibrated_twin_is_exact_or_refused_with_the_reason(
    name: str, method: str, passed: bool, reason: str, tmp_path: Path
) -> None:
    from mlship.config import Task

    model, numeric, categorical, rows = _fitted(name, method)
    report = compile_onnx(model, numeric, categorical, Task.classification, rows, tmp_path)
    assert report.passed is passed
    assert reason in report.reason
    if passed:  # every OJ row: probabilities within the contract, no label change
        assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-6
        assert report.label_mismatches == 0
    else:
        assert report.reason.startswith("conversion unsupported: ")
        assert not (tmp_path / "model.onnx").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("method", "runtime"), [("sigmoid", "onnx"), ("isotonic", "sklearn")])
def test_calibrated_models_train_and_serve_probabilities_that_sum_to_one(
    method: str, runtime: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp(f"calibrated-{method}")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        result = run_cli(*train_args(work, f"model.calibration={method}"))
    assert result.exit_code == 0, result.output
    saved = SavedModel.open(work / "model")
    assert saved.serving_runtime("auto") == runtime
    if runtime == "sklearn":  # refused before conversion, the reason in the parity report
        assert saved.parity is not None and "isotonic calibration" in saved.parity.reason
    predictor = Predictor.load(work / "model")
    frame = pd.read_csv(OJ_CSV)
    proba = predictor.predict_frame(frame).probabilities
    assert proba is not None and np.allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    rows = frame.drop(columns=["Purchase"]).head(50).to_dict(orient="records")
    with TestClient(
        create_app(ServeSettings(model_dir=work / "model"), background_load=False)
    ) as c:
        reply = c.post("/score", json={"dataframe_records": rows})
    assert reply.status_code == 200, reply.text
    for probs in reply.json()["probabilities"]:
        assert probs["CH"] + probs["MM"] == pytest.approx(1.0, abs=1e-9)

    mlflow = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlruns.db'}")
    run = mlflow.get_run(mlflow.get_model_version("oj-purchase", "1").run_id)
    assert 0 < run.data.metrics["brier"] < 0.25  # better than a coin
    assert run.data.params["model.calibration"] == method
    plots = {Path(a.path).name for a in mlflow.list_artifacts(run.info.run_id, "plots")}
    assert {"calibration_curve.png", "calibration_curve.csv"} <= plots
