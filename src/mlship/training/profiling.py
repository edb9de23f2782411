"""The reference profile of a training job: the training part's features, the holdout's predictions.

Numeric features get quantiles and 10 quantile-based bins of the training part (open-ended outer
bins, ties merged: a 0/1 flag gets three bins, not ten); categorical features the share of each
category of at least 1% (as the model reads them: ``7``, ``7.0`` and ``"7"`` are one store), the
rest in ``other``. The prediction side is the fitted pipeline on the holdout: label shares and
fixed probability bins (tenths) per class, or quantile bins of the predicted values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlship.config import Task
from mlship.model.profile import (
    CategoryBins,
    FeatureProfile,
    NumericBins,
    PredictionProfile,
    Profile,
    category_bins,
    fixed_bins,
    quantile_bins,
)
from mlship.scoring.columns import category_text
from mlship.scoring.results import label_indices

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
PROBABILITY_EDGES = tuple(round(0.1 * i, 1) for i in range(1, 10))


def category_values(column: pd.Series) -> list[str]:
    """A column's non-missing values as the model's category texts."""
    texts = (category_text(v) for v in column[column.notna()].tolist())
    return [t for t in texts if t is not None]


def numeric_values(column: pd.Series) -> np.ndarray:
    values: np.ndarray = pd.to_numeric(column, errors="coerce").to_numpy(
        dtype=float, na_value=np.nan
    )
    return np.asarray(values[np.isfinite(values)])


def feature_profile(name: str, column: pd.Series, categorical: bool) -> FeatureProfile:
    null_rate = round(float(column.isna().mean()), 6) if len(column) else 0.0
    if categorical:
        return FeatureProfile(
            name, "categorical", null_rate, category_bins(category_values(column)), {}
        )
    values = numeric_values(column)
    quantiles = {
        str(q): float(f"{v:.6g}")
        for q, v in zip(QUANTILES, np.quantile(values, QUANTILES), strict=True)
    }
    return FeatureProfile(name, "numeric", null_rate, quantile_bins(values), quantiles)


def prediction_profile(
    model: Any, x_test: pd.DataFrame, task: Task, threshold: tuple[int, float] | None = None
) -> PredictionProfile:
    """The fitted pipeline's predictions on the holdout, binned; labels as served (at the
    decision ``threshold``: the positive class's column and the threshold, if any)."""
    if task == Task.regression:
        values = np.asarray(model.predict(x_test), dtype=float)
        return PredictionProfile(values=quantile_bins(values[np.isfinite(values)]))
    classes = [str(c) for c in model.classes_]
    proba = np.asarray(model.predict_proba(x_test), dtype=float)
    positive, at = threshold if threshold is not None else (None, None)
    labels = [classes[i] for i in label_indices(proba, positive, at)]
    probabilities: dict[str, NumericBins] = {
        name: fixed_bins(proba[:, i], PROBABILITY_EDGES) for i, name in enumerate(classes)
    }
    seen = category_bins(labels, min_share=0.0)
    # A class the holdout never predicted still has its bin (share 0), not a place in other.
    shares = {name: seen.categories.get(name, 0.0) for name in classes}
    return PredictionProfile(labels=CategoryBins(shares, 0.0), probabilities=probabilities)


def build_profile(
    model: Any,
    x_train: pd.DataFrame,
    x_test: pd.DataFrame,
    categorical: list[str],
    task: Task,
    threshold: tuple[int, float] | None = None,
) -> Profile:
    """The profile: each model column of the training part, predictions on the holdout."""
    features = {
        str(name): feature_profile(str(name), x_train[name], name in categorical)
        for name in x_train.columns
    }
    predictions = prediction_profile(model, x_test, task, threshold)
    return Profile(len(x_train), len(x_test), features, predictions)
