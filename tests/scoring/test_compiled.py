"""Serving a hist gradient boosting model through its compiled trees, and the ways back.

One small model is trained with ``mlship train`` (which compiles the trees and verifies them);
the predictor must pick the library where it was built, score exactly as the twin does, and
fall back to the twin, saying why, where the library must not or cannot be used.
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
from mlship.scoring.compiled import SMALL_BATCH, CompiledTreesBackend
from mlship.scoring.predictor import Predictor
from mlship.serving.app import create_app
from mlship.serving.settings import ServeSettings
from tests.conftest import ROOT, run_cli, train_args

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("hgb")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        args = [
            "model.name=hist_gradient_boosting",
            "model.params.hist_gradient_boosting.max_iter=40",
        ]
        result = run_cli(*train_args(work, *args))
    assert result.exit_code == 0, result.output
    assert "compiled trees: passed (ok)" in result.output
    return work / "model"


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
