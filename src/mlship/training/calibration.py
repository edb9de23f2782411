"""Calibration: the wrapped estimator (``model.calibration``), the Brier score, and the
reliability curve every classifier's run logs (docs/calibration.md).

``model.calibration: sigmoid|isotonic`` puts the configured estimator inside scikit-learn's
``CalibratedClassifierCV``: fitted on the training part only, it splits that part into
``model.calibration_folds`` stratified folds, fits the estimator on each fold's rest and a
calibrator on the fold, and serves the average of those calibrated models. Whether its ONNX
twin can match it is decided by ``onnx_unsupported``; a model it refuses serves with
scikit-learn, the reason in its parity report like any other conversion that fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BINS = 10
CURVE_CSV = "calibration_curve.csv"
CURVE_PNG = "calibration_curve.png"


def calibrated(estimator: Any, method: str, folds: int) -> Any:
    """``estimator`` wrapped in ``CalibratedClassifierCV`` (ensemble of the folds' models)."""
    from sklearn.calibration import CalibratedClassifierCV

    return CalibratedClassifierCV(estimator, method=method, cv=folds, ensemble=True)


def is_calibrated(estimator: Any) -> bool:
    return type(estimator).__name__ == "CalibratedClassifierCV"


def base_estimators(estimator: Any) -> list[Any]:
    """The fitted estimators behind a (calibrated) final step: itself, or each fold's."""
    if is_calibrated(estimator) and hasattr(estimator, "calibrated_classifiers_"):
        return [c.estimator for c in estimator.calibrated_classifiers_]
    return [estimator]


def onnx_unsupported(model: Any) -> str | None:
    """Why the compiled twin of ``model`` cannot score like it, or None (then parity decides).

    skl2onnx converts ``CalibratedClassifierCV`` but (1.20) maps an isotonic calibrator to the
    nearest of its thresholds where scikit-learn interpolates between them, and feeds a sigmoid
    calibrator the base model's probabilities where scikit-learn calibrates its
    ``decision_function``: the same for logistic regression (its converter gives raw scores),
    not for the gradient-boosted trees, whose compiled twins give probabilities only.
    """
    from mlship.training import forest_onnx

    estimator = model[-1]
    if not is_calibrated(estimator):
        return None
    if estimator.method == "isotonic":
        return (
            "isotonic calibration: skl2onnx takes the nearest calibration point where "
            "scikit-learn interpolates between them"
        )
    base = estimator.estimator
    if forest_onnx.is_forest(base) and hasattr(base, "decision_function"):
        return (
            f"sigmoid calibration of {type(base).__name__}: scikit-learn calibrates its raw "
            "decision_function, the compiled trees give probabilities"
        )
    return None


def _one_vs_rest(
    truth: np.ndarray, proba: np.ndarray, classes: list[str], positive: str | None
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(class, is-that-class, P(class)): the positive class only, or every class."""
    shown = [positive] if positive is not None else classes
    return [(c, truth == c, proba[:, classes.index(c)]) for c in shown]


def brier(truth: Any, proba: np.ndarray, classes: list[str], positive: str | None) -> float:
    """Binary: the Brier score of P(positive). Multiclass: the mean over classes of each
    class's one-vs-rest Brier score (the multiclass Brier score divided by the classes)."""
    labels = np.asarray(truth, dtype=object)
    scores = [
        float(np.mean((p - hit) ** 2)) for _, hit, p in _one_vs_rest(labels, proba, classes, None)
    ]
    if positive is not None:
        return scores[classes.index(positive)]
    return float(np.mean(scores))


def reliability(
    truth: Any, proba: np.ndarray, classes: list[str], positive: str | None, bins: int = BINS
) -> pd.DataFrame:
    """The reliability curve's points: per class shown and non-empty bin of equal width, the
    mean predicted probability, the observed share of the class, and the rows in the bin."""
    from sklearn.calibration import calibration_curve

    labels = np.asarray(truth, dtype=object)
    edges = np.linspace(0.0, 1.0, bins + 1)
    frames = []
    for label, hit, p in _one_vs_rest(labels, proba, classes, positive):
        observed, predicted = calibration_curve(hit.astype(int), p, n_bins=bins, pos_label=1)
        # calibration_curve's own binning (uniform), to count the rows behind each point.
        which = np.searchsorted(edges[1:-1], p)
        counts = np.bincount(which, minlength=bins)
        frames.append(
            pd.DataFrame(
                {
                    "class": str(label),
                    "bin": np.flatnonzero(counts),
                    "mean_predicted": predicted,
                    "fraction_positive": observed,
                    "rows": counts[counts > 0],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def write_reliability(
    truth: Any,
    proba: np.ndarray,
    classes: list[str],
    positive: str | None,
    out_dir: Path,
    figure: Any,
) -> list[Path]:
    """The reliability plot (PNG) and its points (CSV) in ``out_dir``; ``figure`` makes an
    Agg-backed matplotlib ``Figure``."""
    table = reliability(truth, proba, classes, positive)
    csv = out_dir / CURVE_CSV
    table.to_csv(csv, index=False)
    fig = figure(6.0, 5.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    score = brier(truth, proba, classes, positive)
    for label, points in table.groupby("class", sort=False):
        ax.plot(points["mean_predicted"], points["fraction_positive"], marker="o", label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted probability",
           ylabel="observed fraction of the class")  # fmt: skip
    ax.set_title(f"Reliability curve (holdout, Brier {score:.4f})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    png = out_dir / CURVE_PNG
    fig.savefig(png)
    return [png, csv]
