"""Explanations: SHAP contributions that add up, raw-feature aggregation, permutation importance,
the run's artifacts and ``mlship explain`` end to end on OJ."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlship.scoring.predictor import Predictor
from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV, ROOT, run_cli

# Small ensembles: the additivity of SHAP does not depend on the number of trees.
FAST = [
    "model.params.random_forest.n_estimators=40",
    "model.params.hist_gradient_boosting.max_iter=40",
    "model.params.lightgbm.n_estimators=40",
    "model.params.xgboost.n_estimators=40",
]


def _settings(*overrides: str):  # type: ignore[no-untyped-def]
    from mlship.config import load_settings

    return load_settings(BASE_CONFIG, None, [f"data.uri={OJ_CSV}", *FAST, *overrides], ENV_DIR)


@pytest.fixture(scope="module")
def oj():  # type: ignore[no-untyped-def]
    from mlship.training.job import prepare

    return prepare(_settings(), lambda _: None)


def _fitted(oj, name: str):  # type: ignore[no-untyped-def]
    from mlship.training.pipeline import build_pipeline

    settings = _settings(f"model.name={name}")
    model = build_pipeline(
        oj.dataset.numeric, oj.dataset.categorical, settings.model, settings.task, 42
    )
    return model.fit(oj.parts.x_train, oj.parts.y_train)


@pytest.mark.parametrize(
    ("name", "explainer", "scale"),
    [
        ("logistic_regression", "linear", "log-odds"),
        ("random_forest", "tree", "probability"),
        ("hist_gradient_boosting", "tree", "log-odds"),
        ("lightgbm", "tree", "log-odds"),
        ("xgboost", "tree", "log-odds"),
    ],
)
def test_contributions_and_base_value_add_up_to_the_model_output(
    oj, name: str, explainer: str, scale: str
) -> None:
    from mlship.training.explain import explain_rows

    model = _fitted(oj, name)
    rows = oj.parts.x_test
    explained = explain_rows(model, rows, oj.parts.x_train, oj.dataset.classes, "MM")
    assert (explained.explainer, explained.scale, explained.outputs) == (explainer, scale, ["MM"])
    # The model's own probability of MM, through the whole pipeline on the raw rows.
    p_mm = model.predict_proba(rows)[:, list(model.classes_).index("MM")]
    expected = p_mm if scale == "probability" else np.log(p_mm / (1 - p_mm))
    total = explained.base[:, 0] + explained.values[:, :, 0].sum(axis=1)
    tolerance = 1e-3 if name == "xgboost" else 1e-8  # XGBoost's probabilities are float32
    np.testing.assert_allclose(total, expected, atol=tolerance)
    assert np.ptp(total) > 1.0 if scale == "log-odds" else np.ptp(total) > 0.3  # not constant


def test_aggregation_gives_every_raw_feature_its_one_hot_columns(oj) -> None:
    from mlship.training.explain import explain_rows, raw_feature_groups

    model = _fitted(oj, "logistic_regression")
    groups = raw_feature_groups(model[:-1])
    positions = sorted(p for _, members in groups for p in members)
    width = model[:-1].transform(oj.parts.x_test.head(2)).shape[1]
    assert positions == list(range(width))  # every transformed column once
    names = [g for g, _ in groups]
    assert sorted(names) == sorted(oj.dataset.numeric + oj.dataset.categorical)
    stores = dict(groups)["StoreID"]
    assert len(stores) == oj.parts.x_train["StoreID"].nunique() > 1  # one-hot columns summed
    explained = explain_rows(model, oj.parts.x_test, oj.parts.x_train, oj.dataset.classes, "MM")
    table = explained.mean_abs()
    assert set(table.index) == set(names) and table.index[0] == "LoyalCH"


def test_binary_contributions_point_toward_the_positive_class(oj) -> None:
    from mlship.training.explain import explain_rows

    model = _fitted(oj, "lightgbm")
    rows, train = oj.parts.x_test.head(30), oj.parts.x_train
    toward_mm = explain_rows(model, rows, train, oj.dataset.classes, "MM")
    toward_ch = explain_rows(model, rows, train, oj.dataset.classes, "CH")
    assert toward_ch.outputs == ["CH"]
    np.testing.assert_allclose(toward_ch.values, -toward_mm.values)
    np.testing.assert_allclose(toward_ch.base, -toward_mm.base)


def test_permutation_importance_ranks_loyalty_above_a_noise_column(oj) -> None:
    from mlship.training.explain_report import main_metric, permutation_table
    from mlship.training.pipeline import build_pipeline

    rng = np.random.default_rng(7)
    x_train = oj.parts.x_train.assign(Noise=rng.normal(size=len(oj.parts.x_train)))
    x_test = oj.parts.x_test.assign(Noise=rng.normal(size=len(oj.parts.x_test)))
    settings = _settings("model.name=random_forest")
    model = build_pipeline(
        [*oj.dataset.numeric, "Noise"], oj.dataset.categorical, settings.model, settings.task, 42
    ).fit(x_train, oj.parts.y_train)
    metric, scorer = main_metric(settings.task, oj.dataset.classes)
    table = permutation_table(model, x_test, oj.parts.y_test, scorer, repeats=5, seed=42)
    assert metric == "roc_auc" and list(table.columns) == ["importance_mean", "importance_std"]
    assert table.index[0] == "LoyalCH" and table.loc["LoyalCH", "importance_mean"] > 0.1
    assert table.loc["LoyalCH", "importance_mean"] > table.loc["Noise", "importance_mean"] + 0.1
    assert abs(table.loc["Noise", "importance_mean"]) < 0.02
    again = permutation_table(model, x_test, oj.parts.y_test, scorer, repeats=5, seed=42)
    pd.testing.assert_frame_equal(table, again)  # seeded


def test_a_tree_model_shap_cannot_explain_falls_back_to_the_agnostic_explainer(oj) -> None:
    """HistGradientBoosting with native categorical splits: shap's tree explainer gives
    numbers that do not add up to the model's output (checked), so the permutation
    explainer answers instead, and its contributions do add up."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    from mlship.training.explain import explain_rows

    numeric = ["LoyalCH", "PriceDiff", "WeekofPurchase"]
    model = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [("numeric", "passthrough", numeric), ("store", OrdinalEncoder(), ["StoreID"])]
                ),
            ),
            (
                "model",
                HistGradientBoostingClassifier(
                    max_iter=30, categorical_features=[3], random_state=0
                ),
            ),
        ]
    ).fit(oj.parts.x_train, oj.parts.y_train)
    rows = oj.parts.x_test.head(15)
    explained = explain_rows(model, rows, oj.parts.x_train, oj.dataset.classes, "MM")
    assert explained.explainer.startswith("permutation (tree: contributions miss")
    assert explained.features == [*numeric, "StoreID"]
    p_mm = model.predict_proba(rows)[:, 1]
    total = explained.base[:, 0] + explained.values[:, :, 0].sum(axis=1)
    np.testing.assert_allclose(total, p_mm, atol=1e-8)


def test_training_leaves_a_model_without_a_fast_explainer_to_permutation_importance(oj) -> None:
    """The agnostic explainer is too slow for every training run (numba compiles on first
    use); a calibrated model gets no SHAP summary there, and says why."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline

    from mlship.training.explain import ExplainError, explain_rows

    linear = _fitted(oj, "logistic_regression")
    model = Pipeline(
        [("preprocess", linear[0]), ("model", CalibratedClassifierCV(linear[-1], cv=3))]
    ).fit(oj.parts.x_train, oj.parts.y_train)
    with pytest.raises(
        ExplainError, match=r"CalibratedClassifierCV \(no tree or linear explainer\)"
    ):
        explain_rows(model, oj.parts.x_test, oj.parts.x_train, oj.dataset.classes, "MM",
                     agnostic=False)  # fmt: skip


def test_explanations_off_log_nothing(oj) -> None:
    from mlship.training.explain_report import log_explanations

    settings = _settings("explain.enabled=false")
    assert log_explanations(settings, oj, None, "no-such-run", lambda _: None) == {}


def test_the_serving_requirements_hold_no_shap() -> None:
    for path in (ROOT / "requirements").glob("serve-*.txt"):
        pinned = {line.split("==")[0].lower() for line in path.read_text().splitlines()}
        assert not pinned & {"shap", "numba", "llvmlite", "slicer"}, path.name
    train = (ROOT / "requirements" / "train.txt").read_text()
    assert "\nshap==" in train


# -- a trained OJ model: the run's artifacts and `mlship explain` -------------------------


def test_the_training_run_logs_the_explanations(trained_oj: Path) -> None:
    from mlflow import MlflowClient

    mlflow = MlflowClient(tracking_uri=f"sqlite:///{trained_oj / 'mlruns.db'}")
    # The run of trained_oj's own model: other tests train more runs into the same store.
    run = mlflow.get_run(Predictor.load(trained_oj / "model").info.run_id)
    names = {Path(a.path).name for a in mlflow.list_artifacts(run.info.run_id, "explain")}
    assert names == {
        "permutation_importance.csv",
        "permutation_importance.png",
        "shap_importance.csv",
        "shap_importance.png",
        "shap_summary.png",
    }
    tags = run.data.tags
    assert (tags["explain.shap"], tags["explain.scale"], tags["explain.metric"]) == (
        "linear",
        "log-odds",
        "roc_auc",
    )
    local = Path(mlflow.download_artifacts(run.info.run_id, "explain", str(trained_oj / "dl")))
    shap_table = pd.read_csv(local / "shap_importance.csv", index_col="feature")
    perm = pd.read_csv(local / "permutation_importance.csv", index_col="feature")
    assert len(shap_table) == len(perm) == 16  # the raw features, one-hot columns summed
    assert shap_table.index[0] == perm.index[0] == "LoyalCH"


def test_explain_writes_one_row_of_contributions_per_input_row(
    trained_oj: Path, tmp_path: Path
) -> None:
    output = tmp_path / "contributions.csv"
    result = run_cli(
        "explain", "--model", str(trained_oj / "model"), "--input", str(OJ_CSV),
        "--output", str(output), "--batch-rows", "400", "--id-column", "STORE",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "explained 1,070 rows" in result.stdout
    table = pd.read_csv(output)
    source = pd.read_csv(OJ_CSV)
    assert len(table) == len(source)
    features = [c for c in source.columns if c not in ("Purchase", "STORE")]
    assert sorted(c for c in table.columns if c.startswith("shap_")) == sorted(
        f"shap_{f}" for f in features
    )
    shap_values = table[[f"shap_{f}" for f in features]].to_numpy()
    assert np.isfinite(shap_values).all() and np.isfinite(table["base_value"]).all()
    # Linear model, binary: base + contributions = the log-odds of the positive class (MM).
    p_mm = table["proba_MM"].to_numpy()
    np.testing.assert_allclose(
        table["base_value"] + shap_values.sum(axis=1), np.log(p_mm / (1 - p_mm)), atol=1e-6
    )
    assert table["base_value"].nunique() == 1  # one background for every batch
    assert (table["STORE"] == source["STORE"]).all()
    assert set(table["prediction"]) == {"CH", "MM"}
    # The background is the file's first rows, read apart from the batches: --batch-rows
    # (a memory setting) changes no number.
    whole = tmp_path / "whole.csv"
    result = run_cli(
        "explain", "--model", str(trained_oj / "model"), "--input", str(OJ_CSV),
        "--output", str(whole), "--id-column", "STORE",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_csv(whole), table)


def test_explain_writes_parquet_by_extension(trained_oj: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    pd.read_csv(OJ_CSV).head(25).to_csv(rows, index=False)
    output = tmp_path / "contributions.parquet"
    result = run_cli(
        "explain", "--model", str(trained_oj / "model"), "--input", str(rows),
        "--output", str(output),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(output)
    assert len(table) == 25 and "shap_LoyalCH" in table.columns


def test_explain_reads_a_registered_model(trained_oj: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    pd.read_csv(OJ_CSV).head(10).to_csv(rows, index=False)
    output = tmp_path / "contributions.csv"
    result = run_cli(
        "explain", "--model", "models:/oj-purchase@candidate", "--input", str(rows),
        "--output", str(output), "--tracking-uri", f"sqlite:///{trained_oj / 'mlruns.db'}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(output)) == 10


def test_explain_names_the_row_and_column_of_a_bad_cell(trained_oj: Path, tmp_path: Path) -> None:
    rows = pd.read_csv(OJ_CSV).head(20).astype({"PriceCH": object})
    rows.loc[6, "PriceCH"] = "cheap"
    path = tmp_path / "bad.csv"
    rows.to_csv(path, index=False)
    output = tmp_path / "out.csv"
    result = run_cli(
        "explain", "--model", str(trained_oj / "model"), "--input", str(path),
        "--output", str(output),
    )  # fmt: skip
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {path} line 8, column 'PriceCH': expected a number, got 'cheap'"]
    assert "Traceback" not in result.output
    assert not output.exists()
    # The same line `mlship predict` gives for the same file.
    predicted = run_cli(
        "predict", "--model", str(trained_oj / "model"), "--input", str(path),
        "--output", str(tmp_path / "scores.csv"),
    )  # fmt: skip
    assert errors[0] in predicted.stderr


def test_explain_without_shap_says_to_install_the_train_extra(
    trained_oj: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "shap", None)  # import shap raises ImportError
    result = run_cli(
        "explain", "--model", str(trained_oj / "model"), "--input", str(OJ_CSV),
        "--output", str(tmp_path / "out.csv"),
    )  # fmt: skip
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "install the train extra" in lines[0] and "shap" in lines[0]
