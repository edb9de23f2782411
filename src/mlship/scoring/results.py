"""What a prediction is, and the one output schema the service, batch and Spark share.

Output columns: ``prediction`` (the label, or the value for regression), then for classifiers
one ``proba_<class>`` column per class in the model's class order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

PREDICTION = "prediction"
PROBA_PREFIX = "proba_"
FieldKind = Literal["string", "double"]


def result_fields(classes: list[str], is_classifier: bool) -> list[tuple[str, FieldKind]]:
    """Output column names and kinds, in order; each engine maps kinds to its own types."""
    if not is_classifier:
        return [(PREDICTION, "double")]
    return [(PREDICTION, "string"), *((f"{PROBA_PREFIX}{c}", "double") for c in classes)]


@dataclass(frozen=True)
class Prediction:
    """Predicted labels (or values) and, for classifiers, one probability per class per row.

    ``indices`` is each row's label as a position in ``classes`` when the predictor chose it
    (classifiers): a columnar reply can take the labels from the classes without reading a
    Python string per row.
    """

    predictions: list[Any]
    probabilities: np.ndarray | None
    classes: list[str]
    indices: np.ndarray | None = field(default=None, compare=False)

    def probability_records(self) -> list[dict[str, float]] | None:
        """``[{"CH": 0.6, "MM": 0.4}, ...]``, the service's reply shape."""
        if self.probabilities is None:
            return None
        classes = self.classes
        return [dict(zip(classes, row, strict=True)) for row in self.probabilities.tolist()]

    def _numbers(self) -> np.ndarray:
        """The output numbers: the probabilities (rows, classes), else the values (rows,)."""
        if self.probabilities is not None:
            return self.probabilities
        return np.asarray(self.predictions, dtype=np.float64)

    def finite_rows(self) -> np.ndarray:
        """Rows whose every output number is finite (float32 runtimes can overflow to NaN)."""
        numbers = self._numbers()
        if numbers.ndim == 1:  # values: one number a row
            numbers = numbers[:, None]
        finite: np.ndarray = np.isfinite(numbers).all(axis=1)
        return finite

    def all_finite(self) -> bool:
        """Whether every output number is finite: one pass, no mask (the common case)."""
        return bool(np.isfinite(self._numbers()).all())

    def take(self, rows: np.ndarray) -> Prediction:
        """The rows selected by a boolean mask."""
        predictions = [p for p, keep in zip(self.predictions, rows.tolist(), strict=True) if keep]
        probabilities = None if self.probabilities is None else self.probabilities[rows]
        indices = None if self.indices is None else self.indices[rows]
        return Prediction(predictions, probabilities, self.classes, indices)

    def columns(self) -> dict[str, Any]:
        """The output schema's columns (see ``result_fields``), for batch and Spark."""
        out: dict[str, Any] = {PREDICTION: self.predictions}
        if self.probabilities is not None:
            for i, label in enumerate(self.classes):
                out[f"{PROBA_PREFIX}{label}"] = self.probabilities[:, i]
        return out


def positive_index(classes: list[str], positive: str | None) -> int:
    """The column of the positive class: ``positive_class``, else the second class."""
    return classes.index(positive) if positive in classes else 1


def label_indices(proba: np.ndarray, positive: int | None, threshold: float | None) -> np.ndarray:
    """Each row's class: with a threshold (binary), ``positive`` iff P(positive) >= threshold,
    else the other class; without one, the most probable class (ties go to the first).

    Argmax and a threshold of 0.5 differ only where P(positive) is exactly 0.5: argmax gives
    the first class, the threshold the positive one. A model without a threshold keeps argmax.
    """
    if threshold is None or positive is None:
        return np.asarray(proba.argmax(axis=1))
    return np.where(proba[:, positive] >= threshold, positive, 1 - positive)
