"""``mlship compare``: every named algorithm on the same holdout split and the same CV folds.

Each algorithm gets one tracked run (nested under a ``compare`` parent run) with its params,
holdout metrics and CV mean/sd; nothing is registered. Latency is measured the way the model
will serve: the fitted pipeline is saved as a model dir with its ONNX twin and loaded by the
scoring ``Predictor``, which picks ONNX when the twin passed parity, scikit-learn otherwise.
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlship.config import Settings, Task, deep_merge
from mlship.errors import ConfigError
from mlship.registry.flavor import SklearnWithMlshipPyfunc, model_signature
from mlship.registry.tracking import check_store, client
from mlship.scoring.predictor import Predictor
from mlship.storage import owned_prefix
from mlship.training import job, splits
from mlship.training.compile import compile_onnx
from mlship.training.compile_trees import compile_trees
from mlship.training.cv import fold_metrics, summarise
from mlship.training.evaluate import holdout_metrics
from mlship.training.output import Progress
from mlship.training.pipeline import REGISTRY, build_pipeline

HOLDOUT_SHOWN = {
    Task.classification: ["roc_auc", "pr_auc", "accuracy", "f1", "log_loss"],
    Task.regression: ["rmse", "mae", "r2"],
}
CV_SHOWN = {
    Task.classification: ["roc_auc", "accuracy", "log_loss"],
    Task.regression: ["rmse", "r2"],
}
SINGLE_CALLS = 200


@dataclass(frozen=True)
class Row:
    algorithm: str
    holdout: dict[str, float]
    cv: dict[str, float]
    fit_seconds: float
    row_ms: float  # one-row calls, median
    batch_us: float  # per row of a holdout-sized batch, best of 5
    runtime: str
    run_id: str


@dataclass(frozen=True)
class Comparison:
    rows: list[Row]
    task: Task
    folds: int
    parent_run_id: str
    rows_train: int
    rows_test: int


def algorithms(task: Task, names: list[str] | None) -> list[str]:
    """The named algorithms, or every registry algorithm that fits ``task``."""
    fits = [n for n, spec in REGISTRY.items() if spec.path(task)]
    if not names:
        return fits
    wrong = [n for n in names if n not in fits]
    if wrong:
        raise ConfigError(f"algorithm {wrong[0]!r}: not one for {task.value} ({', '.join(fits)})")
    return list(dict.fromkeys(names))


def for_algorithm(settings: Settings, name: str) -> Settings:
    patch = {
        "model": {"name": name, "engine": "local"},
        "tracking": {"run_name": f"compare-{name}"},
    }
    return Settings.model_validate(deep_merge(settings.model_dump(), patch))


def latency(
    model: Any, settings: Settings, data: job.Prepared, work: Path
) -> tuple[str, float, float]:
    """Save the model as serving loads it; the runtime chosen, ms per 1-row call, us per row."""
    from mlflow.models import Model

    d, parts = data.dataset, data.parts
    compile_onnx(model, d.numeric, d.categorical, settings.task, parts.x_test, work / "onnx")
    compile_trees(model, d.numeric, d.categorical, settings.task, parts.x_test, work / "onnx")
    metadata, _, _ = job.run_record(settings, data, None, None)
    classifier = settings.task is Task.classification
    signature = model_signature(list(parts.x_train.columns), d.classes, classifier)
    mlflow_log = logging.getLogger("mlflow")
    level = mlflow_log.level
    mlflow_log.setLevel(logging.ERROR)  # its pickle and pip notes concern no one here
    try:
        SklearnWithMlshipPyfunc.save_model(
            str(work / "model"), Model(), sk_model=model, serialization_format="pickle",
            signature=signature,
            metadata=metadata, extra_files=[str(p) for p in sorted((work / "onnx").iterdir())],
        )  # fmt: skip
    finally:
        mlflow_log.setLevel(level)
    predictor = Predictor.load(work / "model")
    rows = parts.x_test
    singles = []
    for i in range(SINGLE_CALLS):
        one = rows.iloc[[i % len(rows)]]
        start = time.perf_counter()
        predictor.predict_frame(one)
        singles.append(time.perf_counter() - start)
    batches = []
    for _ in range(5):
        start = time.perf_counter()
        predictor.predict_frame(rows)
        batches.append(time.perf_counter() - start)
    return predictor.runtime, statistics.median(singles) * 1e3, min(batches) / len(rows) * 1e6


def _one(settings: Settings, data: job.Prepared, folds: splits.Folds, work: Path) -> Row:
    d, parts = data.dataset, data.parts
    cv = summarise(fold_metrics(settings, data, folds))
    model = build_pipeline(
        d.numeric, d.categorical, settings.model, settings.task, settings.split.seed
    )
    start = time.perf_counter()
    job._fit(model, parts.x_train, parts.y_train, settings.model.name)
    fit_seconds = time.perf_counter() - start
    holdout = holdout_metrics(model, data.holdout)
    runtime, row_ms, batch_us = latency(model, settings, data, work)
    return Row(settings.model.name, holdout, cv, fit_seconds, row_ms, batch_us, runtime, "")


def _track(
    mlflow: Any, settings: Settings, data: job.Prepared, row: Row, parent: tuple[str, str]
) -> str:
    from mlflow.entities import Metric, Param

    experiment, parent_id = parent
    _, tags, params = job.run_record(settings, data, None, None)
    tags = tags | {"mlflow.parentRunId": parent_id, "mlflow.runName": f"compare-{row.algorithm}",
                   "mlship.kind": "compare", "serving.runtime": row.runtime}  # fmt: skip
    run = mlflow.create_run(experiment, tags=tags)
    stamp = run.info.start_time
    values = row.holdout | row.cv | {"fit_seconds": row.fit_seconds, "latency_row_ms": row.row_ms,
                                     "latency_batch_us_per_row": row.batch_us}  # fmt: skip
    logged = [Param(k, json.dumps(v) if isinstance(v, list | dict) else str(v)[:6000])
              for k, v in params.items() if not k.startswith("tune.")]  # fmt: skip
    mlflow.log_batch(run.info.run_id, metrics=[Metric(k, v, stamp, 0) for k, v in values.items()],
                     params=logged)  # fmt: skip
    mlflow.set_terminated(run.info.run_id, "FINISHED")
    return str(run.info.run_id)


def run(settings: Settings, names: list[str] | None, folds: int, progress: Progress) -> Comparison:
    """Compare ``names`` (default: all for the task) on one split and one set of folds."""
    chosen = algorithms(settings.task, names)
    data = job.prepare(settings, progress)
    check_store(settings.tracking.uri, settings.tracking.experiment)
    mlflow = client(settings.tracking.uri)
    experiment = mlflow.get_experiment_by_name(settings.tracking.experiment).experiment_id
    parent_tags = {"mlflow.runName": "compare", "mlship.kind": "compare", **settings.tracking.tags}
    parent = mlflow.create_run(experiment, tags=parent_tags).info.run_id
    cv_folds = splits.cv_folds(data.parts, settings.split, settings.task, folds)
    rows: list[Row] = []
    try:
        for i, name in enumerate(chosen, 1):
            progress(f"[{i}/{len(chosen)}] {name}: {folds}-fold CV, fit, holdout, latency")
            algo = for_algorithm(settings, name)
            with tempfile.TemporaryDirectory(prefix=owned_prefix("mlship-compare")) as work:
                row = _one(algo, data, cv_folds, Path(work))
            rows.append(_with_run(row, _track(mlflow, algo, data, row, (experiment, parent))))
        result = Comparison(
            rows, settings.task, folds, parent, len(data.parts.x_train), len(data.parts.x_test)
        )
        _log_table(mlflow, parent, result)
    except BaseException:
        mlflow.set_terminated(parent, "FAILED")
        raise
    mlflow.set_terminated(parent, "FINISHED")
    return result


def _with_run(row: Row, run_id: str) -> Row:
    from dataclasses import replace

    return replace(row, run_id=run_id)


def header(task: Task) -> list[str]:
    return (
        ["algorithm"]
        + [f"holdout {m}" for m in HOLDOUT_SHOWN[task]]
        + [f"CV {m} (mean ± sd)" for m in CV_SHOWN[task]]
        + ["fit s", "runtime", "1-row ms", "batch µs/row"]
    )


def cells(row: Row, task: Task) -> list[str]:
    return (
        [row.algorithm]
        + [f"{row.holdout[m]:.4f}" for m in HOLDOUT_SHOWN[task]]
        + [f"{row.cv[f'cv_{m}_mean']:.4f} ± {row.cv[f'cv_{m}_std']:.4f}" for m in CV_SHOWN[task]]
        + [f"{row.fit_seconds:.2f}", row.runtime, f"{row.row_ms:.2f}", f"{row.batch_us:.1f}"]
    )


def markdown(result: Comparison) -> str:
    head = header(result.task)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells(r, result.task)) + " |" for r in result.rows]
    return "\n".join(lines) + "\n"


def _log_table(mlflow: Any, parent: str, result: Comparison) -> None:
    mlflow.log_text(parent, markdown(result), "compare/table.md")
    full = [
        {"algorithm": r.algorithm, "runtime": r.runtime, "run_id": r.run_id,
         "fit_seconds": r.fit_seconds, "latency_row_ms": r.row_ms,
         "latency_batch_us_per_row": r.batch_us, **r.holdout, **r.cv}
        for r in result.rows
    ]  # fmt: skip
    mlflow.log_dict(parent, full, "compare/table.json")
    params = {"compare.algorithms": ",".join(r.algorithm for r in result.rows),
              "compare.cv_folds": str(result.folds)}  # fmt: skip
    for key, value in params.items():
        mlflow.log_param(parent, key, value)
