"""The training job: settings in, a tracked run, a registered version and a saved model dir out.

Each step reports through ``progress`` so the CLI can show what is happening; nothing is
written to ``output.model_dir`` until every earlier step succeeded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlship import data as data_mod
from mlship.compile import compile_onnx
from mlship.config import Settings, flatten, public_dump, settings_to_yaml
from mlship.errors import DataError, ModelError
from mlship.evaluate import cross_validate, holdout_metrics, plot_all
from mlship.pipeline import build_pipeline
from mlship.storage import check_replaceable
from mlship.tracking import (
    RegisteredModel,
    check_store,
    export_model,
    git_state,
    log_training,
    pinned_requirements,
    set_alias,
    tracking_uri,
)

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


def _noop(_: str) -> None:
    return None


def _fit(model: Any, x: Any, y: Any, name: str) -> None:
    """Fit, turning the estimator's own complaints about its parameters into a named error."""
    try:
        model.fit(x, y)
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model {name!r} failed to fit: {first}") from None


def run(
    settings: Settings,
    *,
    env: str | None = None,
    config_path: Path | None = None,
    progress: Callable[[str], None] = _noop,
) -> TrainResult:
    """Run the whole training job described by ``settings``."""
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature

    cfg = settings.data
    progress(f"reading {cfg.uri}")
    raw = data_mod.read_table(cfg.uri, cfg.format, cfg.storage_options)
    if cfg.target in raw.columns:
        raw = data_mod.sample(raw, cfg, settings.task)
    progress(f"validating {len(raw):,} rows x {raw.shape[1]} columns")
    dataset = data_mod.prepare(raw, settings)
    parts = data_mod.split(dataset, settings.split, settings.task)
    check_replaceable(settings.output.model_dir.resolve())  # before hours of fitting
    uri = tracking_uri(settings.tracking.uri)
    progress(f"checking the tracking store {uri}")
    check_store(uri, settings.tracking.experiment)

    model = build_pipeline(
        dataset.numeric, dataset.categorical, settings.model, settings.task, settings.split.seed
    )
    metrics: dict[str, float] = {}
    if settings.split.cv_folds:
        progress(f"{settings.split.cv_folds}-fold cross-validation of {settings.model.name}")
        try:
            metrics |= cross_validate(
                model, parts.x_train, parts.y_train, settings.task, settings.split
            )
        except ValueError as exc:
            raise ModelError(f"cross-validation failed: {str(exc).splitlines()[0]}") from None
    progress(f"fitting {settings.model.name} on {len(parts.x_train):,} rows")
    if settings.model.engine == "dask":
        from mlship.distributed import fit_on_dask

        fit_on_dask(model, parts.x_train, parts.y_train, settings.model.dask)
    else:
        _fit(model, parts.x_train, parts.y_train, settings.model.name)
    progress(f"evaluating on {len(parts.x_test):,} holdout rows")
    metrics = (
        holdout_metrics(
            model,
            parts.x_test,
            parts.y_test,
            settings.task,
            dataset.classes,
            dataset.positive_class,
        )
        | metrics
    )

    metadata = {
        "task": settings.task.value,
        "target": cfg.target,
        "numeric": dataset.numeric,
        "categorical": dataset.categorical,
        "classes": dataset.classes,
        "nullable": dataset.nullable,
        "positive_class": dataset.positive_class,
        "algorithm": settings.model.name,
    }
    tags = {
        "mlship.env": env or "local",
        "mlship.config": str(config_path) if config_path else "",
        "mlship.algorithm": settings.model.name,
        "data.uri": cfg.uri,
        "data.sha256": dataset.digest,
        **git_state(),
        **settings.tracking.tags,
    }
    params = flatten(public_dump(settings)) | {
        "data.rows_train": len(parts.x_train),
        "data.rows_test": len(parts.x_test),
        "data.numeric_features": len(dataset.numeric),
        "data.categorical_features": len(dataset.categorical),
    }
    predicted = model.predict(parts.x_train.head(50))
    signature = infer_signature(parts.x_train.head(50), predicted)
    packages = SERVING_PACKAGES + (["lightgbm"] if settings.model.name == "lightgbm" else [])
    lineage = from_pandas(
        raw, source=_lineage_source(cfg.uri), name=Path(cfg.uri).name, targets=cfg.target
    )
    with tempfile.TemporaryDirectory(prefix="mlship-") as work:
        progress("compiling to ONNX and checking parity on the holdout")
        parity = compile_onnx(
            model, dataset.numeric, dataset.categorical, settings.task, parts.x_test,
            Path(work) / "onnx",
        )  # fmt: skip
        progress(f"ONNX parity: {'passed' if parity.passed else 'failed'} ({parity.reason})")
        tags["onnx.parity"] = "passed" if parity.passed else "failed"
        tags["onnx.reason"] = parity.reason[:5000]
        progress("drawing plots")
        plots = plot_all(
            model,
            parts.x_test,
            parts.y_test,
            settings.task,
            dataset.classes,
            dataset.positive_class,
            Path(work) / "plots",
        )
        progress(f"logging run to {uri}")
        registered = log_training(
            settings,
            uri=uri,
            tags=tags,
            params=params,
            metrics=metrics,
            artifacts=plots,
            config_yaml=settings_to_yaml(settings),
            dataset=lineage,
            model=model,
            signature=signature,
            input_example=parts.x_train.head(3),
            metadata=metadata,
            requirements=pinned_requirements(packages),
            extra_files=sorted((Path(work) / "onnx").iterdir()),
        )
    progress(f"exporting version {registered.version} to {settings.output.model_dir}")
    export_model(uri, registered.name, registered.version, settings.output.model_dir)
    set_alias(uri, registered.name, settings.tracking.alias, registered.version)
    return TrainResult(
        metrics=metrics,
        registered=registered,
        model_dir=settings.output.model_dir,
        tracking_uri=uri,
        rows_train=len(parts.x_train),
        rows_test=len(parts.x_test),
    )


def _lineage_source(uri: str) -> str:
    """MLflow resolves dataset sources by scheme; a local path is made absolute."""
    if "://" in uri:
        return uri
    return str(Path(uri).resolve())


__all__ = ["DataError", "TrainResult", "run"]
