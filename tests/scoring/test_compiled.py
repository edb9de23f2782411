"""Serving tree models through their compiled trees, and the ways back.

A small hist gradient boosting model and a small random forest are trained with ``mlship
train`` (which compiles the trees and verifies them); the predictor must pick the library where
it was built, score exactly as the twin does, and fall back to the twin, saying why, where the
library must not or cannot be used.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlship.model import trees
from mlship.model.trees import SMALL_BATCH
from mlship.scoring import backends
from mlship.scoring.compiled import CompiledTreesBackend
from mlship.scoring.predictor import Predictor
from mlship.serving.app import create_app
from mlship.serving.settings import ServeSettings
from tests.conftest import ROOT, run_cli, train_args

pytestmark = pytest.mark.slow


def _trained(work: Path, name: str, size: str) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        result = run_cli(*train_args(work, f"model.name={name}", f"model.params.{name}.{size}"))
    assert result.exit_code == 0, result.output
    assert "compiled trees: passed (ok)" in result.output
    return work / "model"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _trained(tmp_path_factory.mktemp("hgb"), "hist_gradient_boosting", "max_iter=40")


@pytest.fixture(scope="module")
def forest_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _trained(tmp_path_factory.mktemp("rf"), "random_forest", "n_estimators=40")


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    # Missing values: OJ's columns had none, so the service refuses them; the training tests
    # hold the library to the twin on NaN (tests/training/test_compile_trees.py).
    return pd.read_csv(ROOT / "data" / "oj.csv").drop(columns=["Purchase"])


def test_the_library_scores_as_the_twin(model_dir: Path, rows: pd.DataFrame) -> None:
    fast = Predictor.load(model_dir)
    twin = Predictor.load(model_dir, compiled_trees=False)
    assert (fast.runtime, twin.runtime) == ("compiled-trees", "onnx")
    a, b = fast.predict_frame(rows), twin.predict_frame(rows)
    assert a.predictions == b.predictions
    assert a.probabilities is not None and b.probabilities is not None
    assert np.abs(a.probabilities - b.probabilities).max() <= 1e-12


def test_a_forest_scores_as_the_twin_from_two_rows(forest_dir: Path, rows: pd.DataFrame) -> None:
    fast = Predictor.load(forest_dir)
    twin = Predictor.load(forest_dir, compiled_trees=False)
    assert (fast.runtime, twin.runtime) == ("compiled-trees", "onnx")
    backend = fast.backend
    assert isinstance(backend, CompiledTreesBackend) and backend.small == 2
    for n in (1, 2, len(rows)):
        a, b = fast.predict_frame(rows.head(n)), twin.predict_frame(rows.head(n))
        assert a.predictions == b.predictions
        assert a.probabilities is not None and b.probabilities is not None
        assert np.abs(a.probabilities - b.probabilities).max() <= 1e-12


def test_a_forest_hands_a_batch_with_nan_to_the_twin(forest_dir: Path, rows: pd.DataFrame) -> None:
    # Its library's trees send every NaN left (training.forest_treelite): the library itself
    # refuses such a batch. The service refuses NaN in OJ's columns, so the columns are built
    # here past validation, as a model trained with missing values would get them.
    fast = Predictor.load(forest_dir)
    backend = fast.backend
    assert isinstance(backend, CompiledTreesBackend)
    columns = fast.validate({c: rows[c].to_numpy() for c in fast.column_names}).columns
    assert backend.scores(columns) is not None
    holed = dict(columns)
    holed["LoyalCH"] = columns["LoyalCH"].astype(np.float64).copy()
    holed["LoyalCH"][7] = np.nan
    assert backend.scores(holed) is None
    assert np.array_equal(backend.probabilities(holed), backend.twin.probabilities(holed))


def test_the_library_refuses_a_matrix_of_another_shape(model_dir: Path) -> None:
    backend = Predictor.load(model_dir).backend
    assert isinstance(backend, CompiledTreesBackend)
    report = trees.read_trees(model_dir)
    assert report is not None
    wide = np.zeros((3, report.features + 1))
    out = np.zeros((3, report.width + 1))
    for cols, width in ((report.features + 1, report.width), (report.features, report.width + 1)):
        assert backend._predict(wide.ctypes.data, 3, cols, out.ctypes.data, width) == -1
    assert not out.any()  # nothing written


def test_a_library_that_fails_to_load_keeps_the_twin_and_says_why(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object) -> None:
        raise OSError("undefined symbol: predict")

    monkeypatch.setattr(backends, "CompiledTreesBackend", broken)
    with caplog.at_level(logging.WARNING, logger="mlship.scoring.backends"):
        assert Predictor.load(model_dir).runtime == "onnx"
    assert "compiled trees not used (OSError: undefined symbol: predict)" in caplog.text


def test_a_number_the_library_would_read_as_missing_keeps_its_branch(
    model_dir: Path, rows: pd.DataFrame
) -> None:
    # 0.5's float64 predecessor has its low 32 bits all ones: TL2cgen's "missing" pattern.
    tricky = np.nextafter(0.5, 0.0)
    assert int(np.float64(tricky).view(np.uint64)) & 0xFFFFFFFF == 0xFFFFFFFF
    fast = Predictor.load(model_dir)
    twin = Predictor.load(model_dir, compiled_trees=False)
    edge = rows.head(2 * SMALL_BATCH).assign(DiscCH=tricky, LoyalCH=tricky)
    backend = fast.backend
    assert isinstance(backend, CompiledTreesBackend)
    columns = fast.validate({c: edge[c].to_numpy() for c in fast.column_names}).columns
    assert backend.scores(columns) is not None  # scored by the library, not handed back
    assert np.array_equal(
        fast.predict_frame(edge).predictions, twin.predict_frame(edge).predictions
    )
    a, b = fast.predict_frame(edge).probabilities, twin.predict_frame(edge).probabilities
    assert a is not None and b is not None and np.abs(a - b).max() <= 1e-12


def test_an_ambiguous_batch_goes_to_the_twin(model_dir: Path, rows: pd.DataFrame) -> None:
    fast = Predictor.load(model_dir)
    backend = fast.backend
    assert isinstance(backend, CompiledTreesBackend)
    columns = fast.validate({c: rows[c].to_numpy() for c in fast.column_names}).columns
    backend._predict = lambda *_: 1  # the library's count of numbers it could not place
    assert backend.scores(columns) is None
    assert np.array_equal(backend.probabilities(columns), backend.twin.probabilities(columns))


def test_a_small_batch_is_scored_by_the_twin(model_dir: Path, rows: pd.DataFrame) -> None:
    fast = Predictor.load(model_dir)
    backend = fast.backend
    assert isinstance(backend, CompiledTreesBackend)
    calls: list[int] = []
    library = backend._predict
    backend._predict = lambda *args: calls.append(args[1]) or library(*args)
    for n in (1, SMALL_BATCH - 1, SMALL_BATCH):
        columns = fast.validate({c: rows[c].to_numpy()[:n] for c in fast.column_names}).columns
        assert (
            np.abs(backend.probabilities(columns) - backend.twin.probabilities(columns)).max()
            <= 1e-12
        )
    assert calls == [SMALL_BATCH]  # the rows the library was handed, call by call


def test_another_platform_falls_back_to_the_twin_and_says_why(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    built = json.loads((model_dir / "extra_files" / "trees.json").read_text())["platform"]
    older = {**built, "libc_version": "2.17"}
    monkeypatch.setattr(trees, "this_platform", lambda: older)
    with caplog.at_level(logging.WARNING, logger="mlship.scoring.backends"):
        assert Predictor.load(model_dir).runtime == "onnx"
    assert f"built against glibc '{built['libc_version']}', this machine has '2.17'" in caplog.text


def test_more_threads_use_onnxruntime(model_dir: Path) -> None:
    assert Predictor.load(model_dir, threads=2).runtime == "onnx"


def test_the_service_reports_and_can_refuse_the_library(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSHIP_MODEL_DIR", str(model_dir))
    for env, runtime in (("true", "compiled-trees"), ("false", "onnx")):
        monkeypatch.setenv("MLSHIP_COMPILED_TREES", env)
        with TestClient(create_app(ServeSettings())) as client:
            for _ in range(300):
                if client.get("/ready").status_code == 200:
                    break
                time.sleep(0.1)
            assert client.get("/metadata").json()["runtime"] == runtime


@pytest.mark.parametrize(
    ("here", "why"),
    [
        ({"machine": "aarch64"}, "built for machine 'x86_64', this machine has 'aarch64'"),
        ({"libc": ""}, "built for libc 'glibc', this machine has ''"),
        ({"libc_version": "2.35"}, "built against glibc '2.36', this machine has '2.35'"),
        ({"libc_version": "2.40"}, None),
    ],
)
def test_platform_rules(here: dict[str, str], why: str | None) -> None:
    built = {"system": "Linux", "machine": "x86_64", "libc": "glibc", "libc_version": "2.36"}
    assert trees.mismatch(built, built | here) == why
