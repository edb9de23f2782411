"""The decision threshold: chosen on out-of-fold predictions of the training part (never the
holdout), saved with the model and applied by every runtime that makes labels.

The slow half trains OJ once with ``decision.optimize=f1`` and checks that ``mlship predict``,
``/score``, the ONNX and scikit-learn runtimes and plain MLflow's pyfunc all label every OJ
row by the same rule, that it changes labels argmax would give, and that format-2 and 0.1.0
dirs still label by argmax.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from mlship.config import load_settings
from mlship.errors import ConfigError, DataError
from mlship.model import layout
from mlship.model.manifest import write_manifest
from mlship.scoring.predictor import Predictor
from mlship.scoring.results import label_indices
from mlship.serving.app import create_app
from mlship.serving.settings import ServeSettings
from mlship.training import job, splits, threshold
from mlship.training.threshold import best_threshold, candidates
from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV, ROOT, run_cli, train_args

WINE = ROOT / "configs" / "examples" / "wine.yaml"
DIABETES = ROOT / "configs" / "examples" / "diabetes.yaml"
LEGACY = ROOT / "tests" / "fixtures" / "model-v0"


# -- the rule and the search, on numbers -------------------------------------------------------


def test_without_a_threshold_labels_are_argmax_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([1, 1], size=500)
    proba[:3] = [[0.5, 0.5], [0.25, 0.75], [0.75, 0.25]]
    assert np.array_equal(label_indices(proba, 1, None), proba.argmax(axis=1))
    assert label_indices(proba, 1, None)[0] == 0  # argmax's tie goes to the first class
    assert label_indices(proba, 1, 0.5)[0] == 1  # the threshold rule: >= is positive
    at = label_indices(proba, 1, 0.3)
    assert np.array_equal(at == 1, proba[:, 1] >= 0.3)
    assert np.array_equal(label_indices(proba, 0, 0.3) == 0, proba[:, 0] >= 0.3)


@pytest.mark.parametrize("seed", range(5))
def test_candidates_count_every_labelling_a_threshold_makes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(200), 2)  # many ties
    scores[:2] = [0.0, 1.0]
    truth = rng.random(200) < scores
    found = candidates(scores, truth)
    labellings = set()
    for t, tp, fp in zip(
        found.thresholds, found.true_positives, found.false_positives, strict=True
    ):
        assert 0 < t < 1
        chosen = scores >= t
        assert (tp, fp) == ((chosen & truth).sum(), (chosen & ~truth).sum())
        labellings.add(chosen.tobytes())
    # Every cut between distinct scores, none of them twice; with 0 and 1 present, "all rows"
    # and "no rows" need a threshold of 0 or 1, which is not one.
    assert len(labellings) == len(found.thresholds) == len(np.unique(scores)) - 1


@pytest.mark.parametrize("name", ["f1", "youden", "cost"])
def test_the_best_threshold_beats_every_other(name: str) -> None:
    rng = np.random.default_rng(1)
    scores = rng.random(300)
    truth = rng.random(300) < scores**2
    best, value = best_threshold(scores, truth, name, (1.0, 4.0))

    def score(t: float) -> float:
        chosen = scores >= t
        tp, fp = (chosen & truth).sum(), (chosen & ~truth).sum()
        fn = truth.sum() - tp
        if name == "f1":
            return 2 * tp / (2 * tp + fp + fn)
        if name == "youden":
            return tp / truth.sum() - fp / (~truth).sum()
        return -(1.0 * fp + 4.0 * fn) / len(scores)

    grid = np.linspace(0.001, 0.999, 999)
    assert score(best) >= max(score(t) for t in grid) - 1e-12
    assert value == pytest.approx(abs(score(best)))


def test_one_class_or_no_rows_leaves_nothing_to_choose() -> None:
    for truth in (np.ones(4, bool), np.zeros(4, bool), np.zeros(0, bool)):
        with pytest.raises(DataError, match="do not hold both classes"):
            best_threshold(np.linspace(0.1, 0.9, len(truth)), truth, "f1")


# -- config errors name the key ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["decision.threshold=1.5"], "config key decision.threshold: Input should be less than 1"),
        (["decision.threshold=0"], "config key decision.threshold: Input should be greater than 0"),
        (["decision.threshold=1"], "config key decision.threshold:"),
        (["decision.threshold=0.3", "decision.optimize=f1"], "decision.threshold or decision.optimize"),
        (["decision.optimize=cost"], "decision.optimize cost needs decision.cost"),
        (["decision.optimize=f1", "decision.cost={false_positive: 1, false_negative: 2}"],
         "decision.cost is used only with decision.optimize: cost"),
        (["decision.optimize=recall"], "config key decision.optimize:"),
        (["decision.optimize=cost", "decision.cost={false_positive: 0, false_negative: 2}"],
         "config key decision.cost.false_positive:"),
    ],
)  # fmt: skip
def test_bad_decision_settings_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=_literal(message)):
        load_settings(BASE_CONFIG, None, overrides, ENV_DIR)


@pytest.mark.parametrize("key", ["decision.threshold=0.4", "decision.optimize=f1"])
def test_a_threshold_for_a_regressor_is_a_config_error(key: str) -> None:
    with pytest.raises(ConfigError, match=_literal(f"{key.split('=')[0]} needs a binary")):
        load_settings(DIABETES, None, [key], ENV_DIR)


def test_a_threshold_for_a_multiclass_target_is_one_line_naming_the_key(workdir: Path) -> None:
    result = run_cli(*train_args(workdir, "decision.optimize=youden", config=WINE))
    assert result.exit_code != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith("error: decision.optimize: a threshold needs a binary classifier")
    assert "3 classes" in errors[0]
    assert "Traceback" not in result.output
    assert not (workdir / "model").exists()


def _literal(text: str) -> str:
    return re.escape(text)


# -- one OJ model with an optimised threshold, through every runtime --------------------------


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OJ trained with ``decision.optimize=f1``; the dir holds ``model/`` and ``mlruns.db``."""
    work = tmp_path_factory.mktemp("threshold-oj")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        result = run_cli(*train_args(work, "decision.optimize=f1"))
    assert result.exit_code == 0, result.output
    assert "MM iff P(MM) >= 0." in result.stdout  # mlship train says how it labels
    return work


def _settings() -> Any:
    return load_settings(BASE_CONFIG, None, [f"data.uri={OJ_CSV}", "decision.optimize=f1"], ENV_DIR)


def _metadata(model_dir: Path) -> dict[str, Any]:
    meta: dict[str, Any] = yaml.safe_load((model_dir / layout.MLMODEL).read_text())["metadata"]
    return meta


@pytest.mark.slow
def test_the_threshold_comes_from_out_of_fold_predictions_of_the_training_part(
    tuned: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings()
    data = job.prepare(settings, lambda _: None)
    seen: list[pd.Index] = []
    build = threshold.build_pipeline

    def spying(*args: Any) -> Any:  # every frame a fold's model fits on or scores
        model = build(*args)
        fit, proba = model.fit, model.predict_proba
        model.fit = lambda x, y: (seen.append(x.index), fit(x, y))[1]
        model.predict_proba = lambda x: (seen.append(x.index), proba(x))[1]
        return model

    monkeypatch.setattr(threshold, "build_pipeline", spying)
    decision = threshold.choose(settings, data.dataset, data.parts, lambda _: None)
    saved = _metadata(tuned / "model")["decision_threshold"]
    assert decision.threshold == saved
    assert seen and all(not set(i) & set(data.parts.x_test.index) for i in seen)
    # By hand: the same folds, the same models, the best F1 cut of their predictions.
    folds = splits.cv_folds(data.parts, settings.split, settings.task, 5)
    scores, truth = threshold.out_of_fold(
        settings, data.dataset, data.parts.x_train, data.parts.y_train, folds, "MM"
    )
    assert len(scores) == len(data.parts.x_train)
    assert best_threshold(scores, truth, "f1")[0] == saved
    # The holdout would have chosen another one.
    model = Predictor.load(tuned / "model", runtime="sklearn")
    held = model.predict_frame(data.parts.x_test).probabilities
    assert held is not None
    on_holdout = best_threshold(held[:, 1], data.parts.y_test.to_numpy() == "MM", "f1")[0]
    assert on_holdout != saved


@pytest.mark.slow
def test_every_runtime_labels_oj_at_the_threshold(tuned: Path, tmp_path: Path) -> None:
    model_dir = tuned / "model"
    cut = _metadata(model_dir)["decision_threshold"]
    frame = pd.read_csv(OJ_CSV)
    onnx = Predictor.load(model_dir, runtime="onnx").predict_frame(frame)
    sklearn = Predictor.load(model_dir, runtime="sklearn").predict_frame(frame)
    assert onnx.probabilities is not None
    rule = np.where(onnx.probabilities[:, 1] >= cut, "MM", "CH").tolist()
    argmax = np.asarray(["CH", "MM"])[onnx.probabilities.argmax(axis=1)].tolist()
    assert onnx.predictions == rule == sklearn.predictions
    changed = sum(a != b for a, b in zip(rule, argmax, strict=True))
    assert changed > 10  # the threshold is doing something on OJ

    out = tmp_path / "scored.csv"
    result = run_cli(
        "predict", "--model", str(model_dir), "--input", str(OJ_CSV), "--output", str(out)
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)["prediction"].tolist() == rule

    rows = frame.drop(columns=["Purchase"]).to_dict(orient="records")
    settings = ServeSettings(model_dir=model_dir, max_rows=len(rows) + 1, max_body_bytes=2**24)
    with TestClient(create_app(settings, background_load=False)) as client:
        reply = client.post("/score", json={"dataframe_records": rows})
        assert reply.status_code == 200, reply.text
        assert reply.json()["predictions"] == rule
        meta = client.get("/metadata").json()
    assert meta["decision_threshold"] == cut
    assert (meta["positive_class"], meta["decision_rule"]) == ("MM", "threshold")

    import mlflow.pyfunc  # the dir's own code/mlship_pyfunc.py, as plain MLflow loads it

    plain = mlflow.pyfunc.load_model(str(model_dir)).predict(frame.drop(columns=["Purchase"]))
    assert plain["prediction"].tolist() == rule

    # model.onnx served alone (Triton, bare onnxruntime) labels by its own ``label`` output.
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_dir / layout.ONNX))
    feeds = {}
    for given in session.get_inputs():
        column = frame[given.name]
        as_text = given.type == "tensor(string)"
        values = column.astype(str).to_numpy(object) if as_text else column.to_numpy(float)
        feeds[given.name] = values.reshape(-1, 1)
    graph_labels = session.run(["label"], feeds)[0]
    assert graph_labels.ravel().tolist() == rule


@pytest.mark.slow
def test_holdout_metrics_are_logged_at_the_threshold_and_at_half(tuned: Path) -> None:
    settings = _settings()
    data = job.prepare(settings, lambda _: None)
    mlflow = MlflowClient(tracking_uri=f"sqlite:///{tuned / 'mlruns.db'}")
    version = mlflow.get_model_version("oj-purchase", "1")
    logged = mlflow.get_run(version.run_id).data.metrics
    model = Predictor.load(tuned / "model", runtime="sklearn")
    proba = model.predict_frame(data.parts.x_test).probabilities
    assert proba is not None
    truth = data.parts.y_test.to_numpy(dtype=object)
    at_cut = np.where(proba[:, 1] >= logged["decision_threshold"], "MM", "CH")
    at_half = np.asarray(["CH", "MM"])[proba.argmax(axis=1)]
    assert logged["accuracy"] == pytest.approx((at_cut == truth).mean())
    assert logged["accuracy_at_0.5"] == pytest.approx((at_half == truth).mean())
    wanted = {"f1", "f1_at_0.5", "precision_at_0.5", "recall_at_0.5", "brier", "oof_f1"}
    assert wanted <= set(logged)
    assert logged["f1"] != logged["f1_at_0.5"]


@pytest.mark.slow
def test_mlship_evaluate_scores_at_the_models_threshold(tuned: Path) -> None:
    result = run_cli(
        "evaluate", "--config", str(BASE_CONFIG), "--env-dir", str(ENV_DIR),
        "--tracking-uri", f"sqlite:///{tuned / 'mlruns.db'}",
        "--model", str(tuned / "model"), "--data", str(OJ_CSV),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run_id = result.stdout.strip().splitlines()[-1].split()[-1]
    metrics = MlflowClient(tracking_uri=f"sqlite:///{tuned / 'mlruns.db'}").get_run(run_id)
    got = metrics.data.metrics
    frame = pd.read_csv(OJ_CSV)
    labels = np.asarray(Predictor.load(tuned / "model").predict_frame(frame).predictions)
    truth = frame["Purchase"].to_numpy()
    assert got["accuracy"] == pytest.approx(np.mean(labels == truth))
    assert got["recall"] == pytest.approx(np.mean(labels[truth == "MM"] == "MM"))
    assert got["recall"] != got["recall_at_0.5"]


def _as_format_2(source: Path, dest: Path) -> Path:
    """``source`` rewritten as mlship 0.2 wrote it: format 2, no threshold in the metadata."""
    shutil.copytree(source, dest)
    spec = yaml.safe_load((dest / layout.MLMODEL).read_text())
    del spec["metadata"]["decision_threshold"]
    (dest / layout.MLMODEL).write_text(yaml.safe_dump(spec))
    info = json.loads((dest / layout.INFO).read_text())
    (dest / layout.INFO).write_text(json.dumps({**info, "format_version": 2}))
    (dest / layout.MANIFEST).unlink()
    write_manifest(dest, name=info["name"], version=info["version"], run_id=info["run_id"])
    manifest = json.loads((dest / layout.MANIFEST).read_text())
    (dest / layout.MANIFEST).write_text(json.dumps({**manifest, "format_version": 2}))
    return dest


@pytest.mark.slow
def test_format_2_and_0_1_0_dirs_label_by_argmax(tuned: Path, tmp_path: Path) -> None:
    old = _as_format_2(tuned / "model", tmp_path / "format-2")
    frame = pd.read_csv(OJ_CSV)
    for model_dir, fmt in ((old, 2), (LEGACY, 0)):
        predictor = Predictor.load(model_dir)
        assert (predictor.info.format_version, predictor.threshold) == (fmt, None)
        assert predictor.decision == {
            "decision_threshold": 0.5, "decision_rule": "argmax", "positive_class": "MM",
        }  # fmt: skip
        result = predictor.predict_frame(frame)
        assert result.probabilities is not None
        argmax = np.asarray(["CH", "MM"])[result.probabilities.argmax(axis=1)].tolist()
        assert result.predictions == argmax
    with TestClient(create_app(ServeSettings(model_dir=old), background_load=False)) as client:
        meta = client.get("/metadata").json()
    assert (meta["decision_threshold"], meta["decision_rule"]) == (0.5, "argmax")


@pytest.mark.slow
@pytest.mark.integration
def test_plain_mlflow_without_mlship_labels_at_the_threshold(
    tuned: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import subprocess

    from tests import venvs
    from tests.model.test_plain_mlflow import _clean_env, plain_predict

    model_dir = tuned / "model"
    python = venvs.create(tmp_path_factory.mktemp("plain-threshold") / "venv", _clean_env())
    done = subprocess.run(
        [*venvs.install_command(python), "-r", str(model_dir / "requirements.txt")],
        capture_output=True, text=True, env=_clean_env(), timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    frame = pd.read_csv(OJ_CSV)
    reply = plain_predict(python, model_dir, frame, tmp_path_factory.mktemp("plain-reply"))
    theirs = pd.DataFrame(reply["data"], columns=reply["columns"])
    cut = _metadata(model_dir)["decision_threshold"]
    assert theirs["prediction"].tolist() == np.where(theirs["proba_MM"] >= cut, "MM", "CH").tolist()
    ours = Predictor.load(model_dir).predict_frame(frame).predictions
    assert theirs["prediction"].tolist() == ours
    argmax = np.where(theirs["proba_MM"] > theirs["proba_CH"], "MM", "CH").tolist()
    assert theirs["prediction"].tolist() != argmax
