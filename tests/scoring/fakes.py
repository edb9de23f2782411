"""A predictor over a fake backend: the scoring core without a trained model or MLflow."""

from __future__ import annotations

import numpy as np

from mlship.model.saved import Column, ModelInfo
from mlship.scoring.columns import Columns
from mlship.scoring.predictor import Predictor

COLUMNS = [
    Column("price", "numeric", nullable=False),
    Column("discount", "numeric", nullable=True),
    Column("store", "categorical", nullable=False),
    Column("promo", "categorical", nullable=True),
]


class FakeBackend:
    """P(yes) = sigmoid(price - discount), +1 logit for store "7": easy to check by hand."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[Columns] = []

    def probabilities(self, columns: Columns) -> np.ndarray:
        self.calls.append(columns)
        logit = columns["price"] - np.nan_to_num(columns["discount"]) + (columns["store"] == "7")
        yes = 1 / (1 + np.exp(-logit.astype(float)))
        return np.column_stack([1 - yes, yes])

    def values(self, columns: Columns) -> np.ndarray:
        self.calls.append(columns)
        return np.asarray(columns["price"], dtype=float) * 2


def fake_predictor(task: str = "classification") -> Predictor:
    info = ModelInfo(
        name="fake",
        version="3",
        run_id="r1",
        task=task,
        target="bought",
        algorithm="fake",
        classes=["no", "yes"] if task == "classification" else [],
        positive_class="yes",
    )
    return Predictor(FakeBackend(), COLUMNS, info)
