"""Holdout metrics, optional cross-validation and diagnostic plots.

Metric names are stable (they are MLflow metric keys and the promotion gate compares them).
Plots are drawn on matplotlib ``Figure`` objects with the Agg canvas, never through global
pyplot state, so evaluation is safe inside servers and notebooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.pipeline import Pipeline

from mlship.config import SplitConfig, Task
from mlship.scoring.results import label_indices, positive_index
from mlship.training.calibration import base_estimators, brier, write_reliability
from mlship.training.splits import Split, cv_folds

# The metrics that depend on the labels: with a threshold they are also given at argmax's
# labels (``<name>_at_0.5``) for comparison.
LABEL_METRICS = ("accuracy", "precision", "recall", "f1")


def predicted_labels(
    proba: np.ndarray, classes: list[str], positive: str | None, threshold: float | None = None
) -> np.ndarray:
    """Labels as every runtime makes them (``label_indices``): at ``threshold``, else argmax."""
    at = positive_index(classes, positive) if positive is not None else None
    labels: np.ndarray = np.asarray(classes, dtype=object)[label_indices(proba, at, threshold)]
    return labels


def classification_metrics(
    y_true: pd.Series,
    proba: np.ndarray,
    classes: list[str],
    positive: str | None,
    threshold: float | None = None,
) -> dict[str, float]:
    """accuracy, precision, recall, f1, roc_auc, pr_auc, log_loss, brier (macro-averaged if
    multiclass; brier is then the mean one-vs-rest score). With a binary ``threshold``, the
    label metrics are at it, and at argmax as ``<name>_at_0.5``."""
    result = _label_metrics(y_true, proba, classes, positive, threshold)
    if threshold is not None:
        at_half = _label_metrics(y_true, proba, classes, positive, None)
        result |= {f"{name}_at_0.5": at_half[name] for name in LABEL_METRICS}
    truth = y_true.to_numpy(dtype=object)
    labels = np.asarray(classes, dtype=object)
    if positive is not None:
        pos = classes.index(positive)
        binary = (truth == positive).astype(int)
        result |= {
            "roc_auc": skm.roc_auc_score(binary, proba[:, pos]),
            "pr_auc": skm.average_precision_score(binary, proba[:, pos]),
        }
    else:
        onehot = (truth[:, None] == labels[None, :]).astype(int)
        result |= {
            "roc_auc": skm.roc_auc_score(onehot, proba, average="macro", multi_class="ovr"),
            "pr_auc": skm.average_precision_score(onehot, proba, average="macro"),
        }
    result["log_loss"] = skm.log_loss(truth, proba, labels=classes)
    result["brier"] = brier(truth, proba, classes, positive)
    return {name: float(value) for name, value in result.items()}


def _label_metrics(
    y_true: pd.Series,
    proba: np.ndarray,
    classes: list[str],
    positive: str | None,
    threshold: float | None,
) -> dict[str, float]:
    predicted = predicted_labels(proba, classes, positive, threshold)
    truth = y_true.to_numpy(dtype=object)
    result = {"accuracy": skm.accuracy_score(truth, predicted)}
    if positive is not None:
        return result | {
            "precision": skm.precision_score(truth, predicted, pos_label=positive, zero_division=0),
            "recall": skm.recall_score(truth, predicted, pos_label=positive, zero_division=0),
            "f1": skm.f1_score(truth, predicted, pos_label=positive, zero_division=0),
        }
    return result | {
        "precision": skm.precision_score(truth, predicted, average="macro", zero_division=0),
        "recall": skm.recall_score(truth, predicted, average="macro", zero_division=0),
        "f1": skm.f1_score(truth, predicted, average="macro", zero_division=0),
    }


def regression_metrics(y_true: pd.Series, predicted: np.ndarray) -> dict[str, float]:
    """rmse, mae, r2."""
    return {
        "rmse": float(skm.root_mean_squared_error(y_true, predicted)),
        "mae": float(skm.mean_absolute_error(y_true, predicted)),
        "r2": float(skm.r2_score(y_true, predicted)),
    }


@dataclass(frozen=True)
class Holdout:
    """The rows a model is judged on, and what the metrics need to know about the labels."""

    x: pd.DataFrame
    y: pd.Series
    task: Task
    classes: list[str]
    positive: str | None
    threshold: float | None = None  # binary: the decision threshold on P(positive)


def holdout_metrics(model: Pipeline, holdout: Holdout) -> dict[str, float]:
    if holdout.task is Task.classification:
        proba = model.predict_proba(holdout.x)
        h = holdout
        return classification_metrics(h.y, proba, h.classes, h.positive, h.threshold)
    return regression_metrics(holdout.y, model.predict(holdout.x))


def cross_validate(
    model: Pipeline, parts: Split, task: Task, config: SplitConfig
) -> dict[str, float]:
    """k-fold CV on the training part, on the folds ``split.strategy`` makes (the same ones
    ``mlship tune`` and ``mlship compare`` use): mean and std of each score."""
    from sklearn.model_selection import cross_validate as sk_cross_validate

    if config.cv_folds < 2:
        return {}
    folds = cv_folds(parts, config, task, config.cv_folds)
    x_train, y_train = parts.x_train, parts.y_train
    if task is Task.classification:
        multiclass = y_train.nunique() > 2
        scoring = ["accuracy", "roc_auc_ovr" if multiclass else "roc_auc", "neg_log_loss"]
    else:
        scoring = ["neg_root_mean_squared_error", "r2"]
    scores = sk_cross_validate(model, x_train, y_train, cv=folds, scoring=scoring, n_jobs=1)
    result: dict[str, float] = {}
    for name in scoring:
        values = np.asarray(scores[f"test_{name}"], dtype=float)
        clean = name.removeprefix("neg_")
        sign = -1.0 if name.startswith("neg_") else 1.0
        result[f"cv_{clean}_mean"] = float(sign * values.mean())
        result[f"cv_{clean}_std"] = float(values.std())
    return result


def _figure(width: float = 6.0, height: float = 4.5) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    return path


def feature_weights(model: Pipeline) -> pd.Series | None:
    """Per-feature importance (tree models) or absolute coefficients (linear), if exposed."""
    estimators = base_estimators(model[-1])  # a calibrated model: the mean over its folds'
    names = model[:-1].get_feature_names_out()
    if all(hasattr(e, "feature_importances_") for e in estimators):
        values = np.mean([np.asarray(e.feature_importances_, float) for e in estimators], axis=0)
    elif all(hasattr(e, "coef_") for e in estimators):
        coef = [np.abs(np.atleast_2d(np.asarray(e.coef_, float))).mean(axis=0) for e in estimators]
        values = np.mean(coef, axis=0)
    else:
        return None
    if len(values) != len(names):
        return None
    return pd.Series(values, index=names).sort_values(ascending=False)


def plot_all(model: Pipeline, holdout: Holdout, out_dir: Path) -> list[Path]:
    """Draw the diagnostic plots for the task into ``out_dir``; return the PNG paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if holdout.task is Task.classification:
        paths = _classification_plots(model, holdout, out_dir)
    else:
        paths = [_residual_plot(model, holdout, out_dir)]
    weights = feature_weights(model)
    if weights is not None:
        top = weights.head(20)[::-1]
        fig_fi = _figure(7, max(3.0, 0.3 * len(top) + 1))
        ax = fig_fi.add_subplot()
        ax.barh(list(map(str, top.index)), top.to_numpy())
        trees = hasattr(base_estimators(model[-1])[0], "feature_importances_")
        kind = "importance" if trees else "|coefficient|"
        ax.set_title(f"Feature {kind} (top {len(top)})")
        paths.append(_save(fig_fi, out_dir / "feature_importance.png"))
    return paths


def _classification_plots(model: Pipeline, holdout: Holdout, out_dir: Path) -> list[Path]:
    """ROC and precision-recall curves (the positive class, or each class), confusion matrix."""
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    classes = holdout.classes
    proba = model.predict_proba(holdout.x)
    truth = holdout.y.to_numpy(dtype=object)
    shown = [holdout.positive] if holdout.positive is not None else classes
    fig_roc, fig_pr = _figure(), _figure()
    ax_roc, ax_pr = fig_roc.add_subplot(), fig_pr.add_subplot()
    for label in shown:
        col = classes.index(label)
        hits = (truth == label).astype(int)
        RocCurveDisplay.from_predictions(hits, proba[:, col], name=str(label), ax=ax_roc)
        PrecisionRecallDisplay.from_predictions(hits, proba[:, col], name=str(label), ax=ax_pr)
    ax_roc.set_title("ROC curve (holdout)")
    ax_pr.set_title("Precision-recall curve (holdout)")
    fig_cm = _figure(5, 4.5)
    predicted = predicted_labels(proba, classes, holdout.positive, holdout.threshold)
    ConfusionMatrixDisplay.from_predictions(
        truth, predicted, labels=classes, ax=fig_cm.add_subplot(), colorbar=False
    )
    at = "" if holdout.threshold is None else f" at threshold {holdout.threshold:.3f}"
    fig_cm.axes[0].set_title(f"Confusion matrix (holdout{at})")
    return [
        _save(fig_roc, out_dir / "roc_curve.png"),
        _save(fig_pr, out_dir / "pr_curve.png"),
        _save(fig_cm, out_dir / "confusion_matrix.png"),
        *write_reliability(truth, proba, classes, holdout.positive, out_dir, _figure),
    ]


def _residual_plot(model: Pipeline, holdout: Holdout, out_dir: Path) -> Path:
    from sklearn.metrics import PredictionErrorDisplay

    predicted = model.predict(holdout.x)
    fig = _figure(10, 4.5)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    PredictionErrorDisplay.from_predictions(
        holdout.y, predicted, kind="actual_vs_predicted", ax=left
    )
    PredictionErrorDisplay.from_predictions(
        holdout.y, predicted, kind="residual_vs_predicted", ax=right
    )
    left.set_title("Actual vs predicted (holdout)")
    right.set_title("Residuals (holdout)")
    return _save(fig, out_dir / "residuals.png")
