"""Parity as a contract: every supported algorithm's compiled twin scores like scikit-learn.

Small models are fitted straight through the pipeline and compiled with ``compile_onnx`` on
*every* row of each dataset (not only the holdout), with and without missing values: the
same label on every row, probabilities within 1e-6, regression values within 1e-9 relative
(1e-5 for XGBoost, which itself computes in float32). Rows placed exactly on the trees'
thresholds, and one float64 step either side, prove the twin branches as the library does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlship.config import Settings, load_settings
from mlship.training import compile as compile_module
from mlship.training.compile import compile_onnx
from mlship.training.data import Dataset, prepare, split
from mlship.training.forest_onnx import read_forest
from mlship.training.pipeline import build_pipeline
from tests.conftest import ENV_DIR, ROOT

pytestmark = pytest.mark.slow

CONFIGS = {
    "oj": ROOT / "configs" / "base.yaml",
    "wine": ROOT / "configs" / "examples" / "wine.yaml",
    "diabetes": ROOT / "configs" / "examples" / "diabetes.yaml",
}
DATA = {"oj": "oj.csv", "wine": "wine.csv", "diabetes": "diabetes.csv"}
# Small but real models: enough trees and depth that thresholds and NaN branches matter.
SMALL = {
    "random_forest": ["n_estimators=25", "min_samples_leaf=2"],
    "hist_gradient_boosting": ["max_iter=40"],
    "lightgbm": ["n_estimators=40", "num_leaves=15"],
    "xgboost": ["n_estimators=40", "max_depth=4"],
    "logistic_regression": [],
    "ridge": [],
}
CLASSIFIERS = ["logistic_regression", "random_forest", "hist_gradient_boosting", "lightgbm"]
CLASSIFIERS += ["xgboost"]
REGRESSORS = ["ridge", "random_forest", "hist_gradient_boosting", "lightgbm", "xgboost"]
TREES = ["random_forest", "hist_gradient_boosting", "lightgbm", "xgboost"]


def with_missing(frame: pd.DataFrame, target: str, seed: int = 0) -> pd.DataFrame:
    """15% of every feature's cells missing (numbers NaN, text None), target untouched."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for column in out.columns.drop(target):
        holes = rng.random(len(out)) < 0.15
        if out[column].dtype.kind in "if":
            out[column] = out[column].astype(float)
            out.loc[holes, column] = np.nan
        else:
            out[column] = out[column].astype(object)
            out.loc[holes, column] = None
    return out


def load(data: str, name: str, missing: bool) -> tuple[Settings, Dataset, pd.DataFrame]:
    params = [f"model.params.{name}.{p}" for p in SMALL[name]]
    uri = ROOT / "data" / DATA[data]
    settings = load_settings(
        CONFIGS[data], None, [f"model.name={name}", f"data.uri={uri}", *params], ENV_DIR
    )
    frame = pd.read_csv(uri)
    if missing:
        frame = with_missing(frame, settings.data.target)
    dataset = prepare(frame, settings)
    return settings, dataset, dataset.features


def fit(data: str, name: str, missing: bool = False):
    settings, dataset, features = load(data, name, missing)
    parts = split(dataset, settings.split, settings.task)
    model = build_pipeline(
        dataset.numeric, dataset.categorical, settings.model, settings.task, settings.split.seed
    )
    model.fit(parts.x_train, parts.y_train)
    return model, dataset, settings, features


def assert_parity(report, rows: int) -> None:
    assert report.passed, report.reason
    assert report.rows == rows
    assert report.max_abs_diff is not None and report.max_abs_diff <= report.tolerance


CASES = [
    *[("oj", n, m) for n in CLASSIFIERS for m in (False, True)],
    *[("wine", n, False) for n in CLASSIFIERS],
    *[("diabetes", n, m) for n in REGRESSORS for m in (False, True)],
]


@pytest.mark.parametrize(("data", "name", "missing"), CASES)
def test_every_row_scores_the_same(data: str, name: str, missing: bool, tmp_path: Path) -> None:
    model, ds, settings, rows = fit(data, name, missing)
    if missing:
        assert rows[ds.numeric].isna().any().all()  # NaN reaches the model in every column
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    assert_parity(report, len(rows))
    expected = 1e-6 if settings.task.value == "classification" else 1e-9
    if name == "xgboost" and settings.task.value == "regression":
        expected = 1e-5
    assert report.tolerance == expected
    if settings.task.value == "classification":
        assert report.label_mismatches == 0
    assert json.loads((tmp_path / "onnx_parity.json").read_text())["passed"] is True


def on_the_thresholds(model, features: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    """Rows whose numbers sit exactly on split thresholds and one float64 step either side.

    The numeric features come first in the transformed matrix (they pass through), so a
    split on feature ``i < len(numeric)`` is a split on ``numeric[i]``.
    """
    forest = read_forest(model[-1])
    rng = np.random.default_rng(1)
    rows = []
    for tree in forest.trees[:10]:
        for node in np.flatnonzero((tree.feature >= 0) & (tree.feature < len(numeric)))[:8]:
            t = float(tree.threshold[node])
            for value in (t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)):
                row = features.iloc[int(rng.integers(len(features)))].copy()
                row[numeric[int(tree.feature[node])]] = value
                rows.append(row)
    assert len(rows) > 50
    return pd.DataFrame(rows).reset_index(drop=True)


@pytest.mark.parametrize("name", TREES)
def test_rows_on_a_threshold_take_the_same_branch(name: str, tmp_path: Path) -> None:
    model, ds, settings, features = fit("oj", name)
    edge = on_the_thresholds(model, features, ds.numeric)
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, edge, tmp_path)
    assert_parity(report, len(edge))


@pytest.mark.parametrize("name", TREES)
def test_nan_unseen_in_training_goes_where_the_library_sends_it(name: str, tmp_path: Path) -> None:
    # Trained without a missing value, scored with many: LightGBM reads such a NaN as 0.0,
    # scikit-learn and XGBoost send it down each node's default branch.
    model, ds, settings, features = fit("diabetes", name)
    holes = with_missing(features.assign(target=0.0), "target", seed=3).drop(columns="target")
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, holes, tmp_path)
    assert_parity(report, len(holes))


def test_trees_see_raw_numbers_and_linear_models_scaled_ones() -> None:
    tree, _, _, rows = fit("oj", "hist_gradient_boosting", missing=True)
    linear, ds, _, _ = fit("oj", "logistic_regression", missing=True)
    steps = dict((name, step) for name, step, _ in tree.named_steps["preprocess"].transformers)
    assert steps["numeric"] == "passthrough"  # no imputer, no scaler in front of the trees
    raw = tree[:-1].transform(rows)[:, : len(ds.numeric)]
    np.testing.assert_array_equal(raw, rows[ds.numeric].to_numpy(float))  # NaN included
    scaled = linear[:-1].transform(rows)[:, : len(ds.numeric)]
    assert not np.isnan(scaled).any() and abs(float(np.nanmean(scaled))) < 0.2


def test_a_model_outside_the_contract_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # XGBoost computes in float32: held to the float64 limit it must fail, and say so.
    model, ds, settings, rows = fit("diabetes", "xgboost")
    monkeypatch.setattr(compile_module, "FLOAT_VALUE_TOLERANCE", 1e-9)
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    assert not report.passed and "limit 1e-09" in report.reason
    assert report.max_abs_diff is not None and 1e-9 < report.max_abs_diff <= 1e-5


def test_lightgbm_zero_as_missing_is_not_converted(tmp_path: Path) -> None:
    model, ds, settings, rows = fit("diabetes", "lightgbm", missing=True)
    model[-1].set_params(zero_as_missing=True)
    model.fit(rows, np.linspace(0.0, 1.0, len(rows)))
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    assert not report.passed and "zero_as_missing" in report.reason
    assert not (tmp_path / "model.onnx").exists()


def _tree_count(graph_path: Path) -> int:
    import onnx

    node = next(n for n in onnx.load(graph_path).graph.node if n.op_type == "TreeEnsemble")
    return len(next(a for a in node.attribute if a.name == "tree_roots").ints)


def test_a_binary_forest_is_written_once_and_a_multiclass_one_per_class(tmp_path: Path) -> None:
    # Two classes: the trees carry the second and the graph takes one minus it for the first,
    # so each tree is walked once a row (it was walked once per class).
    binary, ds, settings, rows = fit("oj", "random_forest")
    assert read_forest(binary[-1]).link == "complement"
    report = compile_onnx(binary, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    assert_parity(report, len(rows))
    assert _tree_count(tmp_path / "model.onnx") == len(binary[-1].estimators_)
    multi, ds, settings, rows = fit("wine", "random_forest")
    classes = len(multi[-1].classes_)
    assert classes > 2 and read_forest(multi[-1]).link == "proba"
    report = compile_onnx(multi, ds.numeric, ds.categorical, settings.task, rows, tmp_path / "w")
    assert_parity(report, len(rows))
    assert _tree_count(tmp_path / "w" / "model.onnx") == classes * len(multi[-1].estimators_)
