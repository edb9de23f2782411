"""ONNX twins: parity where a converter exists, an honest fallback where it does not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlship.compile import compile_onnx
from mlship.config import load_settings
from mlship.data import prepare, split
from mlship.errors import ModelError
from mlship.pipeline import build_pipeline
from mlship.predictor import PARITY_FILE, Predictor
from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV, ROOT

pytestmark = pytest.mark.slow


def fitted(name: str, config: Path = BASE_CONFIG, data: Path = OJ_CSV):
    settings = load_settings(config, None, [f"model.name={name}", f"data.uri={data}"], ENV_DIR)
    dataset = prepare(pd.read_csv(data), settings)
    parts = split(dataset, settings.split, settings.task)
    model = build_pipeline(
        dataset.numeric, dataset.categorical, settings.model, settings.task, settings.split.seed
    )
    model.fit(parts.x_train, parts.y_train)
    return model, dataset, parts, settings


@pytest.mark.parametrize("name", ["logistic_regression", "lightgbm"])
def test_converted_classifiers_match_sklearn(name: str, tmp_path: Path) -> None:
    model, ds, parts, settings = fitted(name)
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, parts.x_test, tmp_path)
    assert report.passed, report.reason
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-5
    assert report.label_mismatches == 0 and report.rows == len(parts.x_test)
    assert (tmp_path / "model.onnx").stat().st_size > 0
    assert json.loads((tmp_path / "onnx_parity.json").read_text())["passed"] is True


def test_converted_regressor_matches_sklearn(tmp_path: Path) -> None:
    config = ROOT / "configs" / "examples" / "diabetes.yaml"
    model, ds, parts, settings = fitted("ridge", config, ROOT / "data" / "diabetes.csv")
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, parts.x_test, tmp_path)
    assert report.passed, report.reason
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-4


def test_unconvertible_model_is_reported_not_raised(tmp_path: Path) -> None:
    model, ds, parts, settings = fitted("hist_gradient_boosting")
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, parts.x_test, tmp_path)
    assert not report.passed and report.reason.startswith("conversion unsupported")
    assert not (tmp_path / "model.onnx").exists()
    assert json.loads((tmp_path / "onnx_parity.json").read_text())["passed"] is False


def test_parity_failure_is_reported(tmp_path: Path) -> None:
    # Random forests compare float32 inputs to float32 thresholds in ONNX: rows on a split
    # boundary can take the other branch, so this one fails the 1e-5 bar on OJ prices.
    model, ds, parts, settings = fitted("random_forest")
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, parts.x_test, tmp_path)
    assert not report.passed
    assert report.max_abs_diff is not None and report.max_abs_diff > 1e-5
    assert "limit" in report.reason


def test_runtimes_agree_on_every_oj_row(trained_oj: Path) -> None:
    frame = pd.read_csv(OJ_CSV)
    onnx = Predictor.load(trained_oj / "model", extra_columns="ignore", runtime="onnx")
    sk = Predictor.load(trained_oj / "model", extra_columns="ignore", runtime="sklearn")
    auto = Predictor.load(trained_oj / "model", extra_columns="ignore")
    assert (onnx.runtime, sk.runtime, auto.runtime) == ("onnx", "sklearn", "onnx")
    a, b = onnx.predict(frame), sk.predict(frame)
    assert a.probabilities is not None and b.probabilities is not None
    assert np.abs(a.probabilities - b.probabilities).max() <= 1e-5
    assert a.predictions == b.predictions
    bad = frame.head(3).assign(PriceCH=["x", 1.0, None])
    with pytest.raises(Exception) as onnx_error:
        onnx.predict(bad)
    with pytest.raises(Exception) as sk_error:
        sk.predict(bad)
    assert str(onnx_error.value) == str(sk_error.value)  # one validation path


def test_failed_parity_falls_back_to_sklearn(trained_oj: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(trained_oj / "model", model_dir)
    report = model_dir / PARITY_FILE
    report.write_text(
        json.dumps({**json.loads(report.read_text()), "passed": False, "reason": "max diff 1e-2"})
    )
    assert Predictor.load(model_dir).runtime == "sklearn"
    with pytest.raises(ModelError, match="parity failed: max diff 1e-2"):
        Predictor.load(model_dir, runtime="onnx")
