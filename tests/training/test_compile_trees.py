"""Compiled trees (``training.compile_trees``): parity as the twin's contract, or nothing kept.

Hist gradient boosting models and random forests are fitted as in ``test_parity``, compiled
to ONNX and then to native code with the machine's C compiler, and held to the same limits on
every row of each dataset, with and without missing values, on rows sitting exactly on the
split thresholds, and with NaN the model never saw in training. A forest's library never sees
NaN (its rows are the twin's), so its check covers the other rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlship.model import trees
from mlship.training.compile import compile_onnx
from mlship.training.compile_trees import compile_trees
from tests.training.test_parity import fit, on_the_thresholds, with_missing

pytestmark = pytest.mark.slow

CASES = [("oj", False, 1), ("oj", True, 1), ("wine", False, 3), ("diabetes", False, 1)]
CASES += [("diabetes", True, 1)]
ALGORITHMS = ["hist_gradient_boosting", "random_forest"]


def compiled(
    data: str,
    missing: bool,
    rows_of=None,
    tmp_path: Path | None = None,
    algorithm: str = "hist_gradient_boosting",
):
    model, ds, settings, rows = fit(data, algorithm, missing)
    rows = rows_of(model, rows, ds) if rows_of else rows
    assert tmp_path is not None
    twin = compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    assert twin.passed, twin.reason
    said: list[str] = []
    report = compile_trees(
        model, ds.numeric, ds.categorical, settings.task, rows, tmp_path, say=said.append
    )
    return report, rows, said


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(("data", "missing", "width"), CASES)
def test_every_row_scores_the_same(
    data: str, missing: bool, width: int, algorithm: str, tmp_path: Path
) -> None:
    report, rows, said = compiled(data, missing, tmp_path=tmp_path, algorithm=algorithm)
    assert report is not None and report.passed, report and report.reason
    assert report.width == width
    assert report.small_batch == (2 if algorithm == "random_forest" else 48)
    nan_rows = int(np.isnan(_matrix(tmp_path, rows)).any(axis=1).sum())
    checked = len(rows) - (nan_rows if algorithm == "random_forest" else 0)
    assert report.rows == checked > 0 and (nan_rows > 0) == missing
    assert report.max_abs_diff is not None and report.max_abs_diff <= report.tolerance
    assert report.tolerance == (1e-9 if data == "diabetes" else 1e-6)
    assert report.label_mismatches == (None if data == "diabetes" else 0)
    assert report.platform == trees.this_platform() and report.compiler
    for name in ("trees.so", "trees_input.onnx"):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "trees.json").read_text())["passed"] is True
    assert said[-1] == "compiled trees: passed (ok)"


def _matrix(model_dir: Path, rows):
    """The trees' matrix for ``rows``, through the cut twin the library reads from."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_dir / "trees_input.onnx"))
    feeds = {}
    for i in session.get_inputs():
        column = rows[i.name].to_numpy()
        typed = column.astype(object) if "string" in i.type else column.astype(np.float64)
        feeds[i.name] = typed.reshape(-1, 1)
    return session.run(None, feeds)[0]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_rows_on_a_threshold_take_the_same_branch(algorithm: str, tmp_path: Path) -> None:
    # The library compares each number with the thresholds by its rank among them (TL2cgen's
    # quantize option): a number on a threshold, or one float64 step off it, must rank right.
    def edge(model, rows, ds):
        return on_the_thresholds(model, rows, ds.numeric)

    report, rows, _ = compiled("oj", False, edge, tmp_path, algorithm)
    assert report is not None and report.passed, report and report.reason
    assert report.rows == len(rows) > 50


def test_nan_unseen_in_training_goes_where_the_library_sends_it(tmp_path: Path) -> None:
    def holes(_model, rows, _ds):
        return with_missing(rows.assign(t=0.0), "t", seed=3).drop(columns="t")

    report, _, _ = compiled("diabetes", False, holes, tmp_path)
    assert report is not None and report.passed, report and report.reason


def test_other_tree_libraries_are_left_to_the_twin(tmp_path: Path) -> None:
    model, ds, settings, rows = fit("oj", "lightgbm")
    compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    assert compile_trees(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "onnx_parity.json"]


def test_a_forest_holdout_of_only_missing_values_keeps_the_twin(tmp_path: Path) -> None:
    # Numbers reach a forest's trees as they are (NaN too), and a NaN in every holdout row
    # leaves no row the library may score: nothing to check it on, so it is not kept.
    model, ds, settings, rows = fit("oj", "random_forest", True)
    compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    holes = rows.assign(**{ds.numeric[0]: np.nan})
    report = compile_trees(model, ds.numeric, ds.categorical, settings.task, holes, tmp_path)
    assert report is not None and not report.passed
    assert "no holdout row without a missing value" in report.reason
    assert not (tmp_path / "trees.so").exists()


def test_without_a_compiler_nothing_but_the_reason_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, ds, settings, rows = fit("oj", "hist_gradient_boosting")
    compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path / "out")
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    report = compile_trees(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path / "out")
    assert report is not None and not report.passed
    assert report.reason == "not compiled: RuntimeError: no C compiler ($CC, gcc or cc) on PATH"
    kept = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert kept == ["model.onnx", "onnx_parity.json", "trees.json"]


def test_a_library_that_misses_the_contract_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reference made to disagree (its two columns swapped): parity must fail on every
    # row's label, and the library and the cut twin must not stay behind.
    model, ds, settings, rows = fit("oj", "hist_gradient_boosting")
    compile_onnx(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    original = model.predict_proba
    monkeypatch.setattr(model, "predict_proba", lambda x: original(x)[:, ::-1])
    report = compile_trees(model, ds.numeric, ds.categorical, settings.task, rows, tmp_path)
    assert report is not None and not report.passed
    assert "max |p_trees - p_sklearn|" in report.reason and report.label_mismatches
    assert not (tmp_path / "trees.so").exists() and not (tmp_path / "trees_input.onnx").exists()
