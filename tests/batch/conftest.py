"""Fixtures for batch scoring: the session's trained OJ model, its predictor, and OJ tables.

Every table gets an ``order_id`` text column, as real batch inputs carry a key to join on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlship.batch import job
from mlship.batch.job import Tick
from mlship.batch.options import BatchOptions
from mlship.batch.report import BatchResult
from mlship.scoring.predictor import Predictor
from tests.conftest import OJ_CSV


@pytest.fixture(scope="session")
def model_dir(trained_oj: Path) -> Path:
    return trained_oj / "model"


@pytest.fixture(scope="session")
def predictor(model_dir: Path) -> Predictor:
    return Predictor.load(model_dir)


@pytest.fixture(scope="session")
def oj() -> pd.DataFrame:
    frame = pd.read_csv(OJ_CSV)
    frame.insert(0, "order_id", [f"o-{i:05d}" for i in range(len(frame))])
    return frame


def run_batch(
    predictor: Predictor,
    input_uri: str,
    output_uri: str,
    progress: Callable[[Tick], None] | None = None,
    **options: Any,
) -> BatchResult:
    """The local engine, as ``mlship predict`` runs it."""
    return job.score(predictor, BatchOptions(input_uri, output_uri, **options), progress)


def expected_scores(predictor: Predictor, frame: pd.DataFrame) -> pd.DataFrame:
    """The in-process reference: the whole frame through the predictor at once."""
    result = predictor.predict_frame(frame)
    out = pd.DataFrame({"order_id": frame["order_id"].to_numpy(), "prediction": result.predictions})
    assert result.probabilities is not None
    for i, label in enumerate(result.classes):
        out[f"proba_{label}"] = result.probabilities[:, i]
    return out


def assert_same_scores(got: pd.DataFrame, want: pd.DataFrame, tolerance: float = 1e-12) -> None:
    """Same columns, same rows in the same order, same labels, probabilities within tolerance."""
    got = got.reset_index(drop=True)
    want = want.reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    assert got["order_id"].astype(str).tolist() == want["order_id"].astype(str).tolist()
    assert got["prediction"].tolist() == want["prediction"].tolist()
    for column in [c for c in want.columns if c.startswith("proba_")]:
        gap = np.abs(got[column].to_numpy(dtype=float) - want[column].to_numpy(dtype=float))
        assert gap.max() <= tolerance, f"{column} differs by up to {gap.max()}"
