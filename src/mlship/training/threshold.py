"""The decision threshold of a binary classifier: given in config, or chosen on out-of-fold
predictions of the training part (``decision.optimize``), never on the holdout.

The rule (``mlship.scoring.results.label_indices``): a row is ``positive_class`` iff
P(positive_class) >= threshold. Out-of-fold predictions come from the CV folds
``split.strategy`` makes (``splits.cv_folds``); each fold's model is the configured pipeline,
calibration included, so the threshold is chosen on the probabilities the model will serve.
A time strategy's forward-chaining folds never validate the earliest rows: those are left out.

Candidates are the midpoints between neighbouring distinct out-of-fold probabilities (every
labelling of those rows a threshold can make, each by the threshold farthest from both rows
it separates); the best objective wins, ties going to the candidate nearest 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlship.config import Settings, Task
from mlship.errors import ConfigError, DataError, ModelError
from mlship.training import splits
from mlship.training.data import Dataset
from mlship.training.output import Progress
from mlship.training.pipeline import build_pipeline

DEFAULT_FOLDS = 5
OBJECTIVES = ("f1", "youden", "cost")


@dataclass(frozen=True)
class Decision:
    """The threshold in force (None: argmax), how it was set, and what to log about it."""

    threshold: float | None = None
    positive: str | None = None
    how: str = "argmax"
    metrics: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for ``mlship train``: the rule and where the threshold came from."""
        if self.threshold is None:
            return "the most probable class (no threshold)"
        return f"{self.positive} iff P({self.positive}) >= {self.threshold:.4f} ({self.how})"


@dataclass(frozen=True)
class Candidates:
    """Every distinct labelling a threshold makes of some scores, with its confusion counts."""

    thresholds: np.ndarray
    true_positives: np.ndarray
    false_positives: np.ndarray
    positives: int
    negatives: int


def candidates(scores: np.ndarray, positive: np.ndarray) -> Candidates:
    """Thresholds in (0, 1) between neighbouring distinct ``scores`` (and beyond the ends)."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], positive[order]
    ends = np.r_[np.flatnonzero(np.diff(ranked) != 0), len(ranked) - 1]  # last row of each value
    upper = ranked[ends]  # taking every row down to this value ...
    lower = np.r_[ranked[ends[:-1] + 1], 0.0]  # ... and none of the next
    tp = np.cumsum(hits)[ends]
    fp = np.cumsum(~hits)[ends]
    middle = (upper + lower) / 2
    middle = np.where(middle > lower, middle, upper)  # neighbours one float apart
    # First, no row positive: a threshold above the highest score (none if that is 1).
    top = (ranked[0] + 1.0) / 2
    thresholds = np.r_[top if top > ranked[0] else 1.0, middle]
    tp, fp = np.r_[0, tp], np.r_[0, fp]
    keep = (thresholds > 0) & (thresholds < 1)
    return Candidates(
        thresholds[keep], tp[keep], fp[keep], int(positive.sum()), int((~positive).sum())
    )


def objective(found: Candidates, name: str, cost: tuple[float, float] | None = None) -> np.ndarray:
    """Each candidate's score, higher is better: F1, Youden's J, or minus the mean cost."""
    tp, fp = found.true_positives.astype(float), found.false_positives.astype(float)
    fn = found.positives - tp
    if name == "f1":
        denominator = 2 * tp + fp + fn
        f1: np.ndarray = np.divide(
            2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0
        )
        return f1
    if name == "youden":
        return tp / found.positives - fp / found.negatives
    if name == "cost":
        if cost is None:
            raise ConfigError("decision.optimize cost needs decision.cost")
        false_positive, false_negative = cost
        return -(false_positive * fp + false_negative * fn) / (found.positives + found.negatives)
    raise ConfigError(f"decision.optimize {name!r}: choose one of {', '.join(OBJECTIVES)}")


def best_threshold(
    scores: np.ndarray, positive: np.ndarray, name: str, cost: tuple[float, float] | None = None
) -> tuple[float, float]:
    """The threshold with the best ``name`` on these scores, and that best value."""
    truth = np.asarray(positive, dtype=bool)
    if truth.all() or not truth.any():  # also no rows at all
        raise DataError("decision.optimize: the out-of-fold rows do not hold both classes")
    found = candidates(scores, truth)
    if not len(found.thresholds):
        raise DataError("decision.optimize: the out-of-fold probabilities leave no threshold")
    values = objective(found, name, cost)
    best = values.max()
    tied = np.flatnonzero(values >= best - 1e-12)
    pick = tied[np.argmin(np.abs(found.thresholds[tied] - 0.5))]
    value = float(values[pick])
    return float(found.thresholds[pick]), -value if name == "cost" else value


def out_of_fold(
    settings: Settings,
    dataset: Dataset,
    x: pd.DataFrame,
    y: pd.Series,
    folds: splits.Folds,
    positive: str,
) -> tuple[np.ndarray, np.ndarray]:
    """P(positive) of every validated training row from a model fitted without it, and the
    truth (is the row positive); rows no fold validates are left out."""
    scores = np.full(len(x), np.nan)
    for k, (fit_rows, val_rows) in enumerate(folds):
        model = build_pipeline(
            dataset.numeric, dataset.categorical, settings.model, settings.task,
            settings.split.seed,
        )  # fmt: skip
        try:
            model.fit(x.iloc[fit_rows], y.iloc[fit_rows])
        except (ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"decision.optimize: fold {k + 1} failed to fit: {first}") from None
        column = list(model.classes_).index(positive)
        scores[val_rows] = model.predict_proba(x.iloc[val_rows])[:, column]
    seen = ~np.isnan(scores)
    truth = y.to_numpy(dtype=object) == positive
    return scores[seen], truth[seen]


def choose(
    settings: Settings, dataset: Dataset, parts: splits.Split, progress: Progress
) -> Decision:
    """The decision of this job: none, the configured number, or the optimised one."""
    config = settings.decision
    key = config.key
    if key is None:
        return Decision()
    classes = list(dataset.classes) if settings.task is Task.classification else []
    if len(classes) != 2:
        raise ConfigError(
            f"{key}: a threshold needs a binary classifier; target {settings.data.target!r} "
            f"has {len(classes)} classes"
        )
    positive = str(dataset.positive_class)
    if config.threshold is not None:
        fixed = {"decision_threshold": config.threshold}
        return Decision(config.threshold, positive, "decision.threshold", fixed)
    optimize = str(config.optimize)
    folds_n = config.cv_folds or settings.split.cv_folds or DEFAULT_FOLDS
    progress(
        f"choosing the threshold ({optimize}) on {folds_n}-fold out-of-fold predictions of "
        f"the {len(parts.x_train):,} training rows"
    )
    folds = splits.cv_folds(parts, settings.split, settings.task, folds_n)
    scores, truth = out_of_fold(settings, dataset, parts.x_train, parts.y_train, folds, positive)
    cost = (config.cost.false_positive, config.cost.false_negative) if config.cost else None
    threshold, value = best_threshold(scores, truth, optimize, cost)
    how = f"{optimize} on {folds_n}-fold out-of-fold predictions of {len(scores):,} training rows"
    metrics = {"decision_threshold": threshold, f"oof_{optimize}": value}
    return Decision(threshold, positive, how, metrics)
