"""Cross-validation on the training part with explicit folds (``splits.cv_folds``), scored
with the holdout metrics' own code, fold by fold so a search can stop a trial early."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlship.config import Settings
from mlship.errors import ModelError
from mlship.training import job, splits
from mlship.training.evaluate import Holdout, holdout_metrics
from mlship.training.pipeline import build_pipeline


def fold_metrics(
    settings: Settings,
    data: job.Prepared,
    folds: splits.Folds,
    after_fold: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Fit and score each fold of the training part; ``after_fold`` may stop early (raise)."""
    d, parts = data.dataset, data.parts
    scores = []
    for k, (fit_rows, val_rows) in enumerate(folds):
        model = build_pipeline(
            d.numeric, d.categorical, settings.model, settings.task, settings.split.seed
        )
        x, y = parts.x_train.iloc[fit_rows], parts.y_train.iloc[fit_rows]
        job._fit(model, x, y, settings.model.name)
        held = Holdout(
            parts.x_train.iloc[val_rows], parts.y_train.iloc[val_rows], settings.task,
            d.classes, d.positive_class,
        )  # fmt: skip
        try:
            scores.append(holdout_metrics(model, held))
        except ValueError as exc:
            raise ModelError(
                f"CV fold {k + 1}: cannot score it: {str(exc).splitlines()[0]}"
            ) from None
        if after_fold is not None:
            after_fold(k, scores[-1])
    return scores


def summarise(scores: list[dict[str, float]]) -> dict[str, float]:
    """``cv_<metric>_mean`` and ``cv_<metric>_std`` over the folds."""
    out: dict[str, float] = {}
    for name in scores[0]:
        values = np.array([s[name] for s in scores], dtype=float)
        out[f"cv_{name}_mean"] = float(values.mean())
        out[f"cv_{name}_std"] = float(values.std())
    return out
