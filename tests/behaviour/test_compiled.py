"""ONNX twins: parity where a converter exists, an honest fallback where it does not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from mlship.config import load_settings
from mlship.errors import ModelError
from mlship.model.layout import PARITY as PARITY_FILE
from mlship.model.manifest import write_manifest
from mlship.scoring.predictor import Predictor
from mlship.scoring.problems import InputError
from mlship.training import compile as compile_module
from mlship.training.compile import compile_onnx
from mlship.training.data import prepare, split
from mlship.training.pipeline import build_pipeline
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


class MajorityClassifier(ClassifierMixin, BaseEstimator):
    """A classifier no converter knows: conversion must fail, whatever skl2onnx supports."""

    def fit(self, x: Any, y: Any) -> MajorityClassifier:  # noqa: ARG002  (sklearn API)
        self.classes_, counts = np.unique(np.asarray(y), return_counts=True)
        self.prior_ = counts / counts.sum()
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        return np.tile(self.prior_, (len(x), 1))

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


def test_unconvertible_model_is_reported_not_raised(tmp_path: Path) -> None:
    model, ds, parts, settings = fitted("logistic_regression")
    model.steps[-1] = ("model", MajorityClassifier().fit(None, parts.y_train))
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, parts.x_test, tmp_path)
    assert not report.passed and report.reason.startswith("conversion unsupported")
    assert not (tmp_path / "model.onnx").exists()
    assert json.loads((tmp_path / "onnx_parity.json").read_text())["passed"] is False


def test_parity_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The twin's float64 arithmetic runs in another order than scikit-learn's, so some
    # probability differs in its last bits: with a zero tolerance the model must fail.
    monkeypatch.setattr(compile_module, "PROBA_TOLERANCE", 0.0)
    model, ds, parts, settings = fitted("logistic_regression")
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, parts.x_test, tmp_path)
    assert not report.passed
    assert report.max_abs_diff is not None and report.max_abs_diff > 0
    assert "limit" in report.reason
    assert json.loads((tmp_path / "onnx_parity.json").read_text())["passed"] is False


def test_runtimes_agree_on_every_oj_row(trained_oj: Path) -> None:
    frame = pd.read_csv(OJ_CSV)
    onnx = Predictor.load(trained_oj / "model", runtime="onnx")
    sk = Predictor.load(trained_oj / "model", runtime="sklearn")
    auto = Predictor.load(trained_oj / "model")
    assert (onnx.runtime, sk.runtime, auto.runtime) == ("onnx", "sklearn", "onnx")
    a, b = onnx.predict_frame(frame), sk.predict_frame(frame)
    assert a.probabilities is not None and b.probabilities is not None
    assert np.abs(a.probabilities - b.probabilities).max() <= 1e-5
    assert a.predictions == b.predictions
    bad = frame.head(3).assign(PriceCH=["x", 1.0, None])
    with pytest.raises(InputError) as onnx_error:
        onnx.predict_frame(bad)
    with pytest.raises(InputError) as sk_error:
        sk.predict_frame(bad)
    assert str(onnx_error.value) == str(sk_error.value)  # one validation path


def test_failed_parity_falls_back_to_sklearn(trained_oj: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(trained_oj / "model", model_dir)
    report = model_dir / PARITY_FILE
    report.write_text(
        json.dumps({**json.loads(report.read_text()), "passed": False, "reason": "max diff 1e-2"})
    )
    identity = json.loads((model_dir / "mlship.json").read_text())
    write_manifest(  # as an export of a model whose parity failed would have
        model_dir, name=identity["name"], version=identity["version"], run_id=identity["run_id"]
    )
    assert Predictor.load(model_dir).runtime == "sklearn"
    with pytest.raises(ModelError, match="parity failed: max diff 1e-2"):
        Predictor.load(model_dir, runtime="onnx")
