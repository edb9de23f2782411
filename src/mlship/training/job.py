"""The training job: settings in, a tracked run, a registered version and a saved model dir out.

Each step reports through ``progress`` so the CLI can show what is happening. Before any data
is read, ``output.model_dir`` is proven writable and what a killed run left is cleared; nothing
is written there until every earlier step succeeded, a version whose export fails is withdrawn
from the registry, and the alias moves last.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from mlship.config import Settings, Task, flatten, public_dump, settings_to_yaml
from mlship.errors import ModelError
from mlship.model.profile import write_profile
from mlship.registry.flavor import model_signature
from mlship.registry.models import set_alias
from mlship.registry.tracking import (
    ModelContent,
    RegisteredModel,
    RunContent,
    check_store,
    client,
    git_state,
    log_training,
    pinned_requirements,
)
from mlship.scoring.results import positive_index
from mlship.storage import owned_prefix
from mlship.training import data as data_mod
from mlship.training.compile import compile_onnx
from mlship.training.compile_trees import compile_trees
from mlship.training.evaluate import Holdout, cross_validate, holdout_metrics, plot_all
from mlship.training.explain_report import log_explanations
from mlship.training.output import TAG_LIMIT, WORK_STEM, Progress, export, prepare_output
from mlship.training.pipeline import build_pipeline, sklearn_runtime_packages
from mlship.training.profiling import build_profile
from mlship.training.threshold import choose as choose_threshold

# What a saved model needs at scoring time; recorded, pinned, in the model dir.
SERVING_PACKAGES = ["scikit-learn", "numpy", "pandas", "scipy"]


@dataclass(frozen=True)
class TrainResult:
    metrics: dict[str, float]
    registered: RegisteredModel
    model_dir: Path
    tracking_uri: str
    rows_train: int
    rows_test: int
    rows_read: int = 0
    warnings: tuple[str, ...] = ()
    decision: str = ""  # how labels are made: argmax, or the threshold and where it came from


@dataclass(frozen=True)
class Prepared:
    """The data as read, as validated, and as split; ``raw`` is what was used (after sample)."""

    raw: pd.DataFrame
    dataset: data_mod.Dataset
    parts: data_mod.Split
    task: Task
    rows_read: int

    @property
    def holdout(self) -> Holdout:
        d = self.dataset
        return Holdout(self.parts.x_test, self.parts.y_test, self.task, d.classes, d.positive_class)


def _noop(_: str) -> None:
    return None


def _fit(model: Any, x: Any, y: Any, name: str) -> None:
    """Fit, turning the estimator's own complaints about its parameters into a named error."""
    try:
        model.fit(x, y)
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model {name!r} failed to fit: {first}") from None


def prepare(settings: Settings, progress: Progress) -> Prepared:
    cfg = settings.data
    progress(f"reading {cfg.uri}")
    raw = data_mod.read_table(cfg.uri, cfg.format, cfg.storage_options)
    rows_read = len(raw)
    progress(f"read {rows_read:,} rows x {raw.shape[1]} columns")
    if cfg.target in raw.columns:
        raw = data_mod.sample(raw, cfg, settings.task)
    progress(f"validating {len(raw):,} of {rows_read:,} rows")
    dataset = data_mod.prepare(raw, settings)
    for warning in dataset.warnings:
        progress(f"warning: {warning}")
    parts = data_mod.split(dataset, settings.split, settings.task, raw)
    progress(
        f"using {len(raw):,} of {rows_read:,} rows read: {len(parts.x_train):,} to train, "
        f"{len(parts.x_test):,} to hold out"
    )
    return Prepared(raw, dataset, parts, settings.task, rows_read)


def fit_and_evaluate(
    settings: Settings, data: Prepared, progress: Progress, threshold: float | None = None
) -> tuple[Any, dict[str, float]]:
    """The fitted pipeline and its metrics: holdout (label metrics at ``threshold`` and at
    0.5 when there is one), and CV on the training part if asked."""
    dataset, parts = data.dataset, data.parts
    model = build_pipeline(
        dataset.numeric, dataset.categorical, settings.model, settings.task, settings.split.seed
    )
    metrics: dict[str, float] = {}
    if settings.split.cv_folds:
        progress(f"{settings.split.cv_folds}-fold cross-validation of {settings.model.name}")
        try:
            metrics = cross_validate(model, parts, settings.task, settings.split)
        except ValueError as exc:
            raise ModelError(f"cross-validation failed: {str(exc).splitlines()[0]}") from None
    progress(f"fitting {settings.model.name} on {len(parts.x_train):,} rows")
    if settings.model.engine == "dask":
        from mlship.training.distributed import fit_on_dask

        fit_on_dask(model, parts.x_train, parts.y_train, settings.model.dask)
    else:
        _fit(model, parts.x_train, parts.y_train, settings.model.name)
    progress(f"evaluating on {len(parts.x_test):,} holdout rows")
    return model, holdout_metrics(model, replace(data.holdout, threshold=threshold)) | metrics


def run_record(
    settings: Settings,
    data: Prepared,
    env: str | None,
    config_path: Path | None,
    threshold: float | None = None,
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """What the run and the model remember: model metadata, run tags, run params."""
    cfg, dataset, parts = settings.data, data.dataset, data.parts
    metadata = {
        "task": settings.task.value,
        "target": cfg.target,
        "numeric": dataset.numeric,
        "categorical": dataset.categorical,
        "classes": dataset.classes,
        "nullable": dataset.nullable,
        "positive_class": dataset.positive_class,
        "algorithm": settings.model.name,
        # Binary classifiers (format 3): positive_class iff P(positive_class) >= it; null: argmax.
        **({"decision_threshold": threshold} if dataset.positive_class is not None else {}),
    }
    tags = {
        "mlship.env": env or "local",
        "mlship.config": str(config_path) if config_path else "",
        "mlship.algorithm": settings.model.name,
        "data.uri": cfg.uri,
        "data.sha256": dataset.digest,
        **({"data.warnings": "\n".join(dataset.warnings)[:TAG_LIMIT]} if dataset.warnings else {}),
        **git_state(),
        **settings.tracking.tags,
    }
    # The search space is ``mlship tune``'s business, not a parameter of this run.
    config_params = {
        k: v for k, v in flatten(public_dump(settings)).items() if k.split(".")[0] != "tune"
    }
    params = config_params | {
        "data.rows_read": data.rows_read,
        "data.rows_used": len(data.raw),
        "data.rows_train": len(parts.x_train),
        "data.rows_test": len(parts.x_test),
        "data.numeric_features": len(dataset.numeric),
        "data.categorical_features": len(dataset.categorical),
    }
    return metadata, tags, params


def track(
    settings: Settings,
    data: Prepared,
    model: Any,
    metrics: dict[str, float],
    record: tuple[dict[str, Any], dict[str, str], dict[str, Any]],
    progress: Progress,
) -> RegisteredModel:
    """Compile the ONNX twin, draw the plots and log the run with its model version."""
    from mlflow.data.pandas_dataset import from_pandas

    cfg, dataset, parts = settings.data, data.dataset, data.parts
    metadata, tags, params = record
    classifier = settings.task == Task.classification
    threshold = metadata.get("decision_threshold")
    decide = _decision(dataset, threshold)
    signature = model_signature(list(parts.x_train.columns), dataset.classes, classifier)
    packages = SERVING_PACKAGES + sklearn_runtime_packages(settings.model.name)
    lineage = from_pandas(
        data.raw, source=_lineage_source(cfg.uri), name=Path(cfg.uri).name, targets=cfg.target
    )
    with tempfile.TemporaryDirectory(prefix=owned_prefix(WORK_STEM)) as work:
        progress("compiling to ONNX and checking parity on the holdout")
        parity = compile_onnx(
            model, dataset.numeric, dataset.categorical, settings.task, parts.x_test,
            Path(work) / "onnx", threshold=decide,
        )  # fmt: skip
        progress(f"ONNX parity: {'passed' if parity.passed else 'failed'} ({parity.reason})")
        compile_trees(
            model, dataset.numeric, dataset.categorical, settings.task, parts.x_test,
            Path(work) / "onnx", threshold=decide, say=progress,
        )  # fmt: skip
        tags = tags | {
            "onnx.parity": "passed" if parity.passed else "failed",
            "onnx.reason": parity.reason[:TAG_LIMIT],
        }
        progress("drawing plots")
        plots = plot_all(model, replace(data.holdout, threshold=threshold), Path(work) / "plots")
        progress("profiling the training data and the holdout's predictions")
        profile = _profile(model, data, Path(work) / "profile", decide)
        progress(f"logging run to {settings.tracking.uri}")
        run = RunContent(tags, params, metrics, plots, settings_to_yaml(settings), lineage)
        content = ModelContent(
            model=model,
            signature=signature,
            input_example=parts.x_train.head(3),
            metadata=metadata,
            requirements=pinned_requirements(packages),
            extra_files=[*sorted((Path(work) / "onnx").iterdir()), profile],
        )
        registered = log_training(settings, run, content)
        # The model holds it in its extra_files/; the run shows it at the top of its artifacts.
        client(settings.tracking.uri).log_artifact(registered.run_id, str(profile))
        return registered


def _decision(dataset: data_mod.Dataset, threshold: float | None) -> tuple[int, float] | None:
    """The positive class's column and the threshold, when labels are made at one."""
    if threshold is None or dataset.positive_class is None:
        return None
    return positive_index(dataset.classes, dataset.positive_class), threshold


def _profile(
    model: Any, data: Prepared, work: Path, decide: tuple[int, float] | None = None
) -> Path:
    """The reference profile, written where the model's extra files are gathered."""
    parts = data.parts
    work.mkdir()
    built = build_profile(
        model, parts.x_train, parts.x_test, data.dataset.categorical, data.task, decide
    )
    return write_profile(work, built)


def run(
    settings: Settings,
    *,
    env: str | None = None,
    config_path: Path | None = None,
    progress: Progress = _noop,
) -> TrainResult:
    """Run the whole training job described by ``settings``."""
    prepare_output(settings.output.model_dir.resolve(), progress)  # before hours of fitting
    data = prepare(settings, progress)
    uri = settings.tracking.uri
    progress(f"checking the tracking store {uri}")
    check_store(uri, settings.tracking.experiment)
    decision = choose_threshold(settings, data.dataset, data.parts, progress)  # training part
    model, metrics = fit_and_evaluate(settings, data, progress, decision.threshold)
    metrics |= decision.metrics
    record = run_record(settings, data, env, config_path, decision.threshold)
    registered = track(settings, data, model, metrics, record, progress)
    log_explanations(settings, data, model, registered.run_id, progress)  # explain.* settings
    export(settings, registered, progress)
    set_alias(uri, registered.name, settings.tracking.alias, registered.version)
    return TrainResult(
        metrics=metrics,
        registered=registered,
        model_dir=settings.output.model_dir,
        tracking_uri=uri,
        rows_train=len(data.parts.x_train),
        rows_test=len(data.parts.x_test),
        rows_read=data.rows_read,
        warnings=data.dataset.warnings,
        decision=decision.describe() if settings.task is Task.classification else "",
    )


def _lineage_source(uri: str) -> str:
    """MLflow resolves dataset sources by scheme; a local path is made absolute."""
    if "://" in uri:
        return uri
    return str(Path(uri).resolve())
