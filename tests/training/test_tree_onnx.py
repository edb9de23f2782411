"""The tree twin written directly: the trees' matrix in a few nodes, exact, and only where it applies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from mlship.scoring.columns import MISSING_CATEGORY
from mlship.training import tree_onnx
from mlship.training.compile import compile_onnx
from mlship.training.pipeline import build_pipeline
from tests.training.test_linear_onnx import ops
from tests.training.test_parity import TREES, assert_parity, fit

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", TREES)
def test_our_tree_pipelines_get_the_small_graph(name: str, tmp_path: Path) -> None:
    model, ds, settings, rows = fit("oj", name, missing=True)
    assert ds.categorical  # OJ has category columns: the one-hot blocks are written here
    assert tree_onnx.build(model, ds.numeric, ds.categorical, settings.task) is not None
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    assert_parity(report, len(rows))
    assert report.label_mismatches == 0
    written = ops(tmp_path / "model.onnx")
    assert written.count("TreeEnsemble") == 1 and "OneHotEncoder" not in written
    assert len(written) <= 17  # skl2onnx wrote 30 for OJ's hist gradient boosting


@pytest.mark.parametrize("name", ["hist_gradient_boosting", "random_forest"])
def test_unknown_and_missing_categories_take_the_trees_branches(name: str, tmp_path: Path) -> None:
    model, ds, settings, rows = fit("oj", name)
    odd = rows.copy()
    for column in ds.categorical:
        odd.loc[odd.index[::3], column] = "never-seen"  # one-hot: a zero row
        odd.loc[odd.index[1::3], column] = MISSING_CATEGORY  # imputed to the most frequent
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, odd, tmp_path)
    assert_parity(report, len(odd))
    assert report.label_mismatches == 0
    assert not np.allclose(model.predict_proba(odd), model.predict_proba(rows))  # they mattered


def test_a_regressor_answers_variable(tmp_path: Path) -> None:
    model, ds, settings, rows = fit("diabetes", "hist_gradient_boosting", missing=True)
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    assert_parity(report, len(rows))
    graph = onnx.load(tmp_path / "model.onnx")
    assert [o.name for o in graph.graph.output] == ["variable"]
    assert [n.op_type for n in graph.graph.node][-2:] == ["TreeEnsemble", "Add"]  # + baseline


def test_numbers_alone_need_one_concat(tmp_path: Path) -> None:
    model, ds, settings, rows = fit("wine", "hist_gradient_boosting")
    assert not ds.categorical and len(model[-1].classes_) == 3
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    assert_parity(report, len(rows))
    expected = ["Concat", "TreeEnsemble", "Add", "Softmax", "ArgMax", "Gather"]
    assert ops(tmp_path / "model.onnx") == expected


def test_other_pipelines_go_through_skl2onnx(tmp_path: Path) -> None:
    model, ds, settings, rows = fit("oj", "hist_gradient_boosting")
    model.set_params(preprocess__categorical__onehot__drop="first")
    model.fit(rows, model.predict(rows))  # refit with each column's first category dropped
    assert tree_onnx.build(model, ds.numeric, ds.categorical, settings.task) is None
    report = compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    assert_parity(report, len(rows))
    assert "OneHotEncoder" in ops(tmp_path / "model.onnx")
    calibrated = settings.model.model_copy(update={"calibration": "sigmoid"})
    wrapped = build_pipeline(ds.numeric, ds.categorical, calibrated, settings.task, 0)
    wrapped.fit(rows, model.predict(rows))
    assert tree_onnx.build(wrapped, ds.numeric, ds.categorical, settings.task) is None
