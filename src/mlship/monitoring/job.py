"""``mlship monitor``: a batch of rows against the model's reference profile, logged to MLflow.

The batch is any table of rows (a CSV or Parquet file, a folder of Parquet or CSV files such
as the service's request log): the model's feature columns are compared, the others (timestamp,
request_id, prediction, proba_*) ignored. It is scored with the serving ``Predictor`` for the
prediction drift; with labels (``--target``) the metrics are ``mlship evaluate``'s, compared with
the training holdout. The run is tagged with the model version, like an evaluation run.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from mlship.config import MonitorConfig
from mlship.errors import DataError, MlshipError, ModelError
from mlship.model import layout
from mlship.model.profile import Profile, read_profile
from mlship.monitoring.drift import features_drift, prediction_drift
from mlship.monitoring.logged import is_csv_log, read_logged
from mlship.monitoring.report import Monitoring, write_reports
from mlship.registry.judged import Verdict, log_verdict
from mlship.registry.models import local_model
from mlship.scoring.predictor import Predictor
from mlship.storage import owned_prefix
from mlship.training.assess import score
from mlship.training.data import fingerprint, read_table
from mlship.training.output import Progress


@dataclass(frozen=True)
class Request:
    """What to monitor: the model (dir or models:/...), the batch, its label column if any."""

    model: str
    data_uri: str
    target: str | None
    output: Path
    cfg: MonitorConfig


def load_model(source: str, uri: str, work: Path, progress: Progress) -> tuple[Predictor, Path]:
    """The predictor and its (verified) dir; a registry URI is exported into ``work`` first."""
    root = local_model(source, uri, work, progress)
    return Predictor.load(root), root


def profile_of(root: Path) -> Profile:
    profile = read_profile(root)
    if profile is None:
        raise ModelError(
            f"model dir {root} has no reference profile ({layout.PROFILE}): it was trained "
            "before mlship wrote one; retrain it to monitor it"
        )
    return profile


# The request log's own columns (``mlship.serving.request_files``): a feature of one of these
# names is logged as ``feature_<name>``.
LOG_COLUMNS = frozenset(
    {"timestamp", "request_id", "model_name", "model_version", "route", "prediction"}
)


def _logged_as(name: str, columns: pd.Index) -> str:
    renamed = f"feature_{name}"
    reserved = name in LOG_COLUMNS or name.startswith("proba_")
    return renamed if reserved and renamed in columns else name


def with_features(frame: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """``frame`` with every profiled feature under its own name; one line if one is missing."""
    logged = {_logged_as(n, frame.columns): n for n in profile.features}
    renamed = {old: new for old, new in logged.items() if old != new}
    frame = frame.drop(columns=[n for n in renamed.values() if n in frame.columns])
    frame = frame.rename(columns=renamed)
    missing = [name for name in profile.features if name not in frame.columns]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"data: no column {missing[0]!r}{more}; the batch needs every feature")
    if frame.empty:
        raise DataError("data: the batch has no rows")
    return frame


def read_batch(uri: str, profile: Profile) -> pd.DataFrame:
    """The rows at ``uri``; a folder of the service's CSV request log (the slim images write
    CSV) is read with the profile's feature types, so categories stay text."""
    return read_logged(uri, profile) if is_csv_log(uri) else read_table(uri)


def _performance(predictor: Predictor, frame: pd.DataFrame, target: str) -> dict[str, float]:
    if target not in frame.columns:
        raise DataError(f"data: no target column {target!r} (--target)")
    own = predictor.info.target
    if target != own:  # the label under another name: it stands in for the model's own
        frame = frame.drop(columns=[own], errors="ignore").rename(columns={target: own})
    return score(predictor, frame)


def run_monitor(request: Request, tracking: tuple[str, str], progress: Progress) -> Monitoring:
    """Compare the batch with the profile, write the reports, log them; the findings."""
    uri, _ = tracking
    with tempfile.TemporaryDirectory(prefix=owned_prefix("mlship-monitor")) as work:
        predictor, root = load_model(request.model, uri, Path(work), progress)
        profile = profile_of(root)
        progress(f"reading {request.data_uri}")
        frame = with_features(read_batch(request.data_uri, profile), profile)
        features = frame[list(profile.features)]
        info = predictor.info
        progress(f"comparing {len(frame):,} rows with the profile of {info.name} v{info.version}")
        drifts = features_drift(profile, features, request.cfg)
        try:
            prediction = predictor.predict_frame(features)
        except MlshipError as exc:
            raise DataError(f"data: rows the model cannot score: {exc}") from None
        predicted = prediction_drift(profile.prediction, prediction, request.cfg)
        metrics = _performance(predictor, frame, request.target) if request.target else {}
    thresholds = {
        "psi_threshold": request.cfg.psi_threshold,
        "p_value": request.cfg.p_value,
        "drift_share": request.cfg.drift_share,
    }
    result = Monitoring(info, request.data_uri, len(frame), drifts, predicted, thresholds, metrics)
    progress(f"logging the monitoring run to {uri}")
    return replace(result, run_id=_log(tracking, result, fingerprint(frame), request.output))


def _log(tracking: tuple[str, str], result: Monitoring, digest: str, output: Path) -> str:
    """The monitoring run, tagged with the model version; the reports as its artifacts."""
    values = {"drift_share": result.drift_share, "drifted_features": float(len(result.drifted))}
    values |= {f"psi.{d.name}": d.psi for d in result.features}
    values |= {f"psi.prediction.{d.name}": d.psi for d in result.prediction}
    tags = {
        "monitor.dataset_drift": str(result.failed).lower(),
        "monitor.drifted_features": ",".join(result.drifted)[:5000],
    }
    verdict = Verdict(
        "monitoring", result.info, (result.data_uri, digest), result.rows,
        values | result.metrics, tags, "mlship.last_monitor_run",
    )  # fmt: skip
    return log_verdict(
        tracking,
        verdict,
        lambda run_id: list(write_reports(replace(result, run_id=run_id), output)),
    )
