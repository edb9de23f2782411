"""The linear twin written from the fitted parameters: small, exact, and only where it applies.

The tree twin's own tests are in ``test_tree_onnx``; the name rule both share is tested here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn.preprocessing import OneHotEncoder

from mlship.config import ModelConfig, Task
from mlship.scoring.columns import MISSING_CATEGORY
from mlship.training import linear_onnx, onnx_graph, tree_onnx
from mlship.training.compile import compile_onnx
from mlship.training.pipeline import build_pipeline
from tests.training.test_parity import assert_parity, fit

pytestmark = pytest.mark.slow


def ops(path: Path) -> list[str]:
    return [n.op_type for n in onnx.load(path).graph.node]


@pytest.mark.parametrize(("data", "name"), [("oj", "logistic_regression"), ("wine", "logistic_regression"), ("diabetes", "ridge")])  # fmt: skip
def test_our_pipelines_get_the_small_graph(data: str, name: str, tmp_path: Path) -> None:
    model, ds, settings, rows = fit(data, name, missing=data != "wine")
    assert linear_onnx.build(model, ds.numeric, ds.categorical, settings.task) is not None
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    assert_parity(report, len(rows))
    written = ops(tmp_path / "model.onnx")
    assert "Gemm" in written and "MatMul" not in written
    assert "OneHotEncoder" not in written and "Div" not in written
    assert len(written) <= 15  # skl2onnx wrote 35 for OJ's logistic regression
    classify = settings.task is Task.classification
    one_output = not classify or len(model.classes_) == 2
    # The label's Gather, plus one a category column where there is more than one output.
    expected = int(classify) + (0 if one_output else len(ds.categorical))
    assert written.count("Gather") == expected


def test_unknown_and_missing_categories_score_as_scikit_learn_does(tmp_path: Path) -> None:
    model, ds, settings, rows = fit("oj", "logistic_regression", missing=True)
    odd = rows.copy()
    column = ds.categorical[0]
    odd.loc[odd.index[::3], column] = "never-seen"  # one-hot: a zero row
    odd.loc[odd.index[1::3], column] = MISSING_CATEGORY  # imputed to the most frequent
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, odd, tmp_path)
    assert_parity(report, len(odd))
    assert report.label_mismatches == 0
    seen = model.predict_proba(odd)
    assert not np.allclose(seen, model.predict_proba(rows))  # the odd cells did change scores


def test_another_encoder_goes_through_skl2onnx(tmp_path: Path) -> None:
    model, ds, settings, rows = fit("oj", "logistic_regression")
    model.set_params(preprocess__categorical__onehot__drop="first")
    model.fit(rows, model.predict(rows))  # refit with each column's first category dropped
    onehot = model.named_steps["preprocess"].named_transformers_["categorical"]["onehot"]
    assert isinstance(onehot, OneHotEncoder) and onehot.drop == "first"
    assert linear_onnx.build(model, ds.numeric, ds.categorical, settings.task) is None
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    assert_parity(report, len(rows))
    assert "OneHotEncoder" in ops(tmp_path / "model.onnx")


@pytest.mark.parametrize(("name", "writer"), [("logistic_regression", linear_onnx), ("random_forest", tree_onnx)])  # fmt: skip
def test_a_column_named_like_an_output_is_not_written_and_says_why(
    name: str, writer: Any, tmp_path: Path
) -> None:
    # A graph's input and output cannot share a name, and the outputs' names are the twin's
    # contract: such a model keeps scikit-learn, with the reason in its parity report.
    model, ds, settings, rows = fit("oj", name)
    renamed = rows.rename(columns={ds.numeric[0]: "label"})
    numeric = ["label", *ds.numeric[1:]]
    clash = build_pipeline(numeric, ds.categorical, settings.model, settings.task, 0)
    clash.fit(renamed, model.predict(rows))
    assert writer.build(clash, numeric, ds.categorical, settings.task) is None
    report = compile_onnx(clash, numeric, ds.categorical, settings.task, renamed, tmp_path)
    assert not report.passed and report.reason.startswith("conversion unsupported")
    assert not (tmp_path / "model.onnx").exists()
    graph = writer.build(model, ds.numeric, ds.categorical, settings.task)
    produced = {o for n in graph.graph.node for o in n.output} - set(onnx_graph.OUTPUTS)
    assert produced and all(name.startswith(onnx_graph.PREFIX) for name in produced)


def _weighted(model: Any) -> None:
    model.set_params(preprocess__transformer_weights={"numeric": 10.0})


def _bare_encoder(model: Any) -> None:
    model.set_params(preprocess__categorical=OneHotEncoder(handle_unknown="ignore"))


@pytest.mark.parametrize("name", ["logistic_regression", "hist_gradient_boosting"])
@pytest.mark.parametrize("change", [_weighted, _bare_encoder])
def test_shapes_neither_writer_knows_go_through_skl2onnx(
    name: str, change: Any, tmp_path: Path
) -> None:
    # Weights scale a transformer's columns, and a bare encoder imputes nothing: written as our
    # pipeline's graph, either would score differently, so both writers leave them to skl2onnx.
    model, ds, settings, rows = fit("oj", name)
    change(model)
    model.fit(rows, model.predict(rows))
    for writer in (linear_onnx, tree_onnx):
        assert writer.build(model, ds.numeric, ds.categorical, settings.task) is None
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    assert_parity(report, len(rows))
    assert "OneHotEncoder" in ops(tmp_path / "model.onnx")


@pytest.mark.parametrize(("name", "task"), [("ridge", Task.regression), ("logistic_regression", Task.classification)])  # fmt: skip
def test_a_feature_far_from_zero_keeps_full_precision(
    name: str, task: Task, tmp_path: Path
) -> None:
    # Epoch milliseconds over a few hours: a mean 1e8 times the spread. Taking the mean into
    # the intercept would cancel two terms of 1e12 and miss the 1e-9 regression contract.
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"ts": 1.7e12 + rng.uniform(0, 1e4, 500), "w": rng.normal(size=500)})
    y = (frame.ts - 1.7e12) / 1e4 + frame.w + rng.normal(0, 0.1, 500)
    target = y if task is Task.regression else np.where(y > 1, "a", "b")
    model = build_pipeline(["ts", "w"], [], ModelConfig(name=name), task, 0)
    model.fit(frame, target)
    assert linear_onnx.build(model, ["ts", "w"], [], task) is not None
    report = compile_onnx(model, ["ts", "w"], [], task, frame, tmp_path)
    assert_parity(report, len(frame))
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-12


def test_columns_of_different_lengths_are_refused_not_misread() -> None:
    # The numbers are laid out (features, rows) for onnxruntime's sake. Laid out by
    # concatenating the columns end to end, 500 and 502 values would read as two columns of
    # 501 and score garbage; the twin must refuse them, as any caller of model.onnx may send it.
    import onnxruntime as ort

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    model = build_pipeline(["a", "b"], [], ModelConfig(name="ridge"), Task.regression, 0)
    model.fit(frame, frame.a - frame.b)
    graph = linear_onnx.build(model, ["a", "b"], [], Task.regression)
    assert graph is not None
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    same = {"a": frame[["a"]].to_numpy(), "b": frame[["b"]].to_numpy()}
    (values,) = session.run(["variable"], same)
    assert np.allclose(values.ravel(), model.predict(frame), rtol=1e-12, atol=0)
    with pytest.raises(Exception, match=r"(?i)concat|dimension|shape"):
        session.run(["variable"], {"a": same["a"], "b": rng.normal(size=(502, 1))})


@pytest.mark.parametrize(("name", "task"), [("ridge", Task.regression), ("logistic_regression", Task.classification)])  # fmt: skip
def test_categories_with_one_output_and_with_several_score_as_scikit_learn_does(
    name: str, task: Task, tmp_path: Path
) -> None:
    # One output (a ridge) maps a category's text to its weight; three classes keep a Gather
    # of the one-hot position's weights. Both with an unknown category and the missing marker.
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"a": rng.normal(size=600), "c": rng.choice(["x", "y", "z"], 600)})
    shift = frame.c.map({"x": -1.0, "y": 0.0, "z": 1.5})
    y = frame.a + shift + rng.normal(0, 0.2, 600)
    target = y if task is Task.regression else np.digitize(y, [-0.5, 0.5]).astype(str)
    model = build_pipeline(["a"], ["c"], ModelConfig(name=name), task, 0)
    model.fit(frame, target)
    odd = frame.copy()
    odd.loc[odd.index[::5], "c"] = "never-seen"
    odd.loc[odd.index[1::5], "c"] = MISSING_CATEGORY
    report = compile_onnx(model, ["a"], ["c"], task, odd, tmp_path)
    assert_parity(report, len(odd))
    written = ops(tmp_path / "model.onnx")
    assert written.count("LabelEncoder") == 1
    assert written.count("Gather") == (0 if task is Task.regression else 2)
