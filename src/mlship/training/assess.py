"""``mlship evaluate``: score a labelled table with a saved or registered model, compare the
metrics with the model's training holdout, log an evaluation run, and judge metric floors.

The model is loaded as serving loads it (``Predictor``: ONNX when its twin passed parity), so
the figures are those of the deployed model; the metrics are training's own code.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from mlship.errors import ConfigError, DataError, MlshipError
from mlship.model.saved import ModelInfo
from mlship.registry.judged import Verdict, log_verdict
from mlship.registry.models import local_model
from mlship.registry.promotion import LOWER_IS_BETTER
from mlship.scoring.columns import category_text
from mlship.scoring.predictor import Predictor
from mlship.storage import owned_prefix
from mlship.training.data import fingerprint, read_table
from mlship.training.evaluate import classification_metrics, regression_metrics
from mlship.training.output import Progress


@dataclass(frozen=True)
class Floor:
    """A bound a metric must keep: at least ``value``, or at most it (``ceiling``)."""

    metric: str
    value: float
    ceiling: bool = False

    @classmethod
    def parse(cls, text: str, ceiling: bool = False) -> Floor:
        name, _, raw = text.partition("=")
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not name.strip() or np.isnan(value):
            raise ConfigError(f"metric bound {text!r}: expected METRIC=NUMBER, e.g. roc_auc=0.85")
        return cls(name.strip(), value, ceiling)

    def breach(self, metrics: dict[str, float]) -> str | None:
        """Why ``metrics`` break this bound, or None."""
        if self.metric not in metrics:
            raise ConfigError(
                f"metric bound {self.metric!r}: not a metric here ({', '.join(metrics)})"
            )
        if not self.ceiling and self.metric in LOWER_IS_BETTER:
            raise ConfigError(f"metric bound {self.metric!r}: lower is better; give it a ceiling")
        got = metrics[self.metric]
        if self.ceiling and got > self.value:
            return f"{self.metric} {got:.4f} is above the ceiling {self.value:g}"
        if not self.ceiling and got < self.value:
            return f"{self.metric} {got:.4f} is below the floor {self.value:g}"
        return None


@dataclass(frozen=True)
class Evaluation:
    info: ModelInfo
    runtime: str
    rows: int
    metrics: dict[str, float]
    training: dict[str, float]
    breaches: list[str]
    run_id: str


def _labels(frame: pd.DataFrame, info: ModelInfo) -> pd.Series:
    if info.target not in frame.columns:
        raise DataError(
            f"data: no target column {info.target!r} (the model's label) to evaluate on"
        )
    target = frame[info.target]
    missing = int(target.isna().sum())
    if missing:
        raise DataError(f"target column {info.target!r}: {missing} row(s) have no value")
    if info.task == "regression":
        return pd.to_numeric(target, errors="raise").astype("float64")
    labels = target.map(category_text).astype(object)
    strays = sorted(set(labels) - set(info.classes))
    if strays:
        raise DataError(
            f"target column {info.target!r}: {strays[0]!r} is not a class of the model "
            f"({info.classes})"
        )
    return labels


def score(predictor: Predictor, frame: pd.DataFrame) -> dict[str, float]:
    """The task's metrics of ``predictor`` on a labelled ``frame``."""
    info = predictor.info
    truth = _labels(frame, info)
    try:
        prediction = predictor.predict_frame(frame.drop(columns=[info.target]))
    except MlshipError as exc:
        raise DataError(f"data: rows the model cannot score: {exc}") from None
    if predictor.is_classifier:
        proba = np.asarray(prediction.probabilities, dtype=float)
        # At the model's decision threshold (and at 0.5), as its labels are made.
        threshold = predictor.threshold
        return classification_metrics(
            truth, proba, list(info.classes), info.positive_class, threshold
        )
    return regression_metrics(truth, np.asarray(prediction.predictions, dtype=float))


def _load(source: str, uri: str, work: Path, progress: Progress) -> Predictor:
    return Predictor.load(local_model(source, uri, work, progress))


def _log(tracking: tuple[str, str], result: Evaluation, data: tuple[str, str]) -> str:
    """The evaluation run, tagged with the model version it judged (and the version with it)."""
    tags = {
        "serving.runtime": result.runtime,
        "evaluation.passed": str(not result.breaches).lower(),
    }
    verdict = Verdict(
        "evaluation", result.info, data, result.rows, result.metrics, tags,
        "mlship.last_evaluation_run",
    )  # fmt: skip
    return log_verdict(tracking, verdict, None)


def evaluate(
    source: str,
    data_uri: str,
    tracking: tuple[str, str],
    bounds: list[Floor],
    progress: Progress,
) -> Evaluation:
    """Score ``data_uri`` with ``source`` (a model dir or models:/name@alias) and log the run."""
    uri, _ = tracking
    with tempfile.TemporaryDirectory(prefix=owned_prefix("mlship-evaluate")) as work:
        predictor = _load(source, uri, Path(work), progress)
        progress(f"reading {data_uri}")
        frame = read_table(data_uri)
        info = predictor.info
        progress(
            f"scoring {len(frame):,} rows with {info.name} v{info.version} ({predictor.runtime})"
        )
        metrics = score(predictor, frame)
    breaches = [b for b in (bound.breach(metrics) for bound in bounds) if b]
    training = dict(predictor.info.metrics)
    result = Evaluation(
        predictor.info, predictor.runtime, len(frame), metrics, training, breaches, ""
    )
    progress(f"logging the evaluation run to {uri}")
    run_id = _log(tracking, result, (data_uri, fingerprint(frame)))
    return replace(result, run_id=run_id)
