"""Drift of a batch against the reference profile: PSI on the profile's bins and a chi-square test.

Each feature's batch values are counted in the bins the profile cut from the training part
(``mlship.model.profile``, whose ``psi`` the live gauges use too). The population stability
index, ``sum((batch - ref) * ln(batch / ref))`` over the bins (shares floored at 1e-4 so an
empty bin is finite), says how far the distribution moved: under 0.1 little, 0.1-0.2 some,
over 0.2 a major shift. The chi-square goodness-of-fit test of the batch's bin counts against the
profile's shares says whether the move could be sampling noise. A feature drifts when both
agree: PSI above ``monitor.psi_threshold`` and a p-value below ``monitor.p_value``; a small
batch's noisy PSI alone does not flag it, nor does a large batch's significant but tiny move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats  # type: ignore[import-untyped]

from mlship.config import MonitorConfig
from mlship.model.profile import (
    FLOOR,
    CategoryBins,
    FeatureProfile,
    NumericBins,
    PredictionProfile,
    Profile,
    psi,
)
from mlship.scoring.results import Prediction
from mlship.training.profiling import category_values, numeric_values

__all__ = ["FLOOR", "Drift", "chi_square_p", "features_drift", "prediction_drift", "psi"]


@dataclass(frozen=True)
class Drift:
    """One distribution's move: a feature, the predicted labels, or one class's probability."""

    name: str
    kind: str
    psi: float
    p_value: float
    drifted: bool
    rows: int
    null_rate: float = 0.0
    reference_null_rate: float = 0.0


def chi_square_p(reference: tuple[float, ...], batch: tuple[float, ...], rows: int) -> float:
    """p-value of the batch's bin counts under the reference shares (1.0 for an empty batch)."""
    if rows == 0:
        return 1.0
    observed = np.rint(np.asarray(batch, dtype=float) * rows)
    expected = np.clip(np.asarray(reference, dtype=float), FLOOR, None)
    expected = expected / expected.sum() * observed.sum()
    return float(stats.chisquare(observed, expected).pvalue)


def judge(
    name: str, kind: str, shares: tuple[tuple[float, ...], tuple[float, ...]], rows: int,
    cfg: MonitorConfig,
) -> Drift:  # fmt: skip
    reference, batch = shares
    index = psi(reference, batch) if rows else 0.0
    p = chi_square_p(reference, batch, rows)
    drifted = bool(rows) and index > cfg.psi_threshold and p < cfg.p_value
    return Drift(name, kind, round(index, 6), float(f"{p:.6g}"), drifted, rows)


def feature_drift(feature: FeatureProfile, column: pd.Series, cfg: MonitorConfig) -> Drift:
    """One feature of the batch against its profile."""
    bins = feature.bins
    if isinstance(bins, CategoryBins):
        texts = category_values(column)
        rows, shares = len(texts), bins.shares_of(texts)
    else:
        values = numeric_values(column)
        rows, shares = len(values), bins.shares_of(values)
    drift = judge(feature.name, feature.kind, (bins.shares, shares), rows, cfg)
    null_rate = round(float(column.isna().mean()), 6) if len(column) else 0.0
    all_gone = rows == 0 and len(column) > 0 and feature.null_rate < 1.0
    return Drift(
        drift.name, drift.kind, drift.psi, drift.p_value, drift.drifted or all_gone, rows,
        null_rate, feature.null_rate,
    )  # fmt: skip


def features_drift(profile: Profile, frame: pd.DataFrame, cfg: MonitorConfig) -> list[Drift]:
    """Every profiled feature of ``frame`` (columns the profile does not know are ignored)."""
    return [feature_drift(f, frame[name], cfg) for name, f in profile.features.items()]


def prediction_drift(
    reference: PredictionProfile, prediction: Prediction, cfg: MonitorConfig
) -> list[Drift]:
    """The predicted labels and each class's probability (or the predicted values)."""
    found: list[Drift] = []
    rows = len(prediction.predictions)
    if reference.values is not None:
        values = np.asarray(prediction.predictions, dtype=float)
        values = values[np.isfinite(values)]
        shares = (reference.values.shares, reference.values.shares_of(values))
        found.append(judge("prediction", "numeric", shares, len(values), cfg))
    if reference.labels is not None:
        labels = [str(p) for p in prediction.predictions]
        shares = (reference.labels.shares, reference.labels.shares_of(labels))
        found.append(judge("prediction", "categorical", shares, rows, cfg))
    if reference.probabilities is not None and prediction.probabilities is not None:
        for i, name in enumerate(prediction.classes):
            bins: NumericBins | None = reference.probabilities.get(str(name))
            if bins is None:
                continue
            batch = bins.shares_of(np.asarray(prediction.probabilities[:, i], dtype=float))
            found.append(judge(f"proba_{name}", "numeric", (bins.shares, batch), rows, cfg))
    return found
