"""The tracked training run: store checks, tags, params, metrics, artifacts, the model."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mlship.config import Settings
from mlship.errors import TrackingError
from mlship.registry.flavor import SklearnWithMlshipPyfunc

CONFIG_ARTIFACT = "config/resolved.yaml"
MANIFEST_TAG = "model.manifest_sha256"


def quiet_mlflow() -> None:
    """Keep MLflow's and Alembic's INFO chatter (DB migrations, schema hints) off the console.

    Our own progress lines say what is happening; MLflow's warnings about integer columns
    concern its dataset preview, not the model signature (see ``mlship.registry.flavor``).
    """
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    # MLflow's HTTP client retries 7 times with backoff by default: a dead server took 256 s
    # to report. Two retries and a 30 s timeout fail in under a minute; users may override.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow(\..*)?")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow(\..*)?")


def git_state(cwd: Path | None = None) -> dict[str, str]:
    """Commit and dirtiness of the working tree, if it is a git checkout with git installed."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"git.commit": commit, "git.dirty": str(bool(status.strip())).lower()}


def pinned_requirements(packages: list[str]) -> list[str]:
    """``name==installed`` for each package, so the model dir records what it was built with."""
    pins = []
    for name in packages:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    run_id: str
    model_uri: str


@contextmanager
def active_store(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at ``uri`` for a block, then restore the previous state.

    ``mlflow.set_tracking_uri`` also writes MLFLOW_TRACKING_URI into the environment; left
    there, a later job in the same process would silently inherit this run's store.
    """
    import mlflow

    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")}
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])  # type: ignore[arg-type]
        from mlflow.tracking import fluent

        fluent._active_experiment_id = None  # set_experiment's choice belongs to this store
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def check_store(uri: str, experiment: str) -> None:
    """Reach the tracking store before hours of fitting, not after: a named error if we can't."""
    import mlflow

    with active_store(uri):
        try:
            mlflow.set_experiment(experiment)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrackingError(
                f"tracking.uri {uri!r}: cannot reach the tracking store: {reason}"
            ) from None


def client(uri: str) -> Any:
    """An MlflowClient bound to ``uri`` (imported late: mlflow is heavy)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def record_manifest_digest(
    mlflow_client: Any, model_version: Any, run_tags: dict[str, str], digest: str
) -> None:
    """Tag the run and the registered version with the digest of the version's first export.

    Training exports first, so the tags hold the digest of the dir training wrote. A later
    export of the same version (``mlship image build models:/...``) writes the same bytes unless
    its ``mlship.json`` differs (another tracking URI spelling, another mlship version); the
    tags then keep the first digest rather than change under an existing deployment.
    """
    from mlflow.exceptions import MlflowException

    name, version = model_version.name, str(model_version.version)
    try:
        if MANIFEST_TAG not in run_tags:
            mlflow_client.set_tag(model_version.run_id, MANIFEST_TAG, digest)
        if MANIFEST_TAG not in (model_version.tags or {}):
            mlflow_client.set_model_version_tag(name, version, MANIFEST_TAG, digest)
    except MlflowException as exc:
        first = exc.message.splitlines()[0] if exc.message else str(exc)
        raise TrackingError(
            f"registered model {name!r} v{version}: cannot record the manifest digest ({first})"
        ) from None


@dataclass(frozen=True)
class RunContent:
    """What a training run logs besides the model."""

    tags: dict[str, str]
    params: dict[str, Any]
    metrics: dict[str, float]
    artifacts: list[Path]
    config_yaml: str
    dataset: Any = None


@dataclass(frozen=True)
class ModelContent:
    """The fitted model and what MLflow stores with it."""

    model: Any
    signature: Any
    input_example: Any
    metadata: dict[str, Any]
    requirements: list[str]
    extra_files: list[Path] = field(default_factory=list)


def log_training(settings: Settings, run: RunContent, content: ModelContent) -> RegisteredModel:
    """One MLflow run: tags, params, metrics, plots, config, lineage, the model and its version."""
    import mlflow
    from mlflow.models import Model

    uri = settings.tracking.uri
    check_store(uri, settings.tracking.experiment)
    with active_store(uri), _experiment_run(settings) as active:
        mlflow.set_tags(run.tags)
        mlflow.log_params({k: _param_text(v) for k, v in run.params.items()})
        mlflow.log_metrics(run.metrics)
        if run.dataset is not None:
            mlflow.log_input(run.dataset, context="training")
        for path in run.artifacts:
            mlflow.log_artifact(str(path), artifact_path="plots")
        mlflow.log_text(run.config_yaml, CONFIG_ARTIFACT)
        mlflow.log_dict(run.metrics, "metrics.json")
        info = Model.log(
            artifact_path=None,
            flavor=SklearnWithMlshipPyfunc,
            sk_model=content.model,
            name="model",
            signature=content.signature,
            input_example=content.input_example,
            # Plain pickle, not MLflow's default skops: importing skops.io alone takes ~6 s
            # here (it enumerates every scikit-learn estimator), which would dominate the
            # scoring container's cold start. The artifact is ours, written by this job.
            serialization_format="pickle",
            pip_requirements=content.requirements,
            metadata=content.metadata,
            extra_files=[str(p) for p in content.extra_files] or None,
            registered_model_name=settings.tracking.registered_model,
        )
        version = str(info.registered_model_version)
        mlflow.set_tag("registered_model.version", version)
    return RegisteredModel(
        name=settings.tracking.registered_model,
        version=version,
        run_id=active.info.run_id,
        model_uri=info.model_uri,
    )


@contextmanager
def _experiment_run(settings: Settings) -> Iterator[Any]:
    """A run in the configured experiment (``active_store`` forgets the choice on exit)."""
    import mlflow

    mlflow.set_experiment(settings.tracking.experiment)
    with mlflow.start_run(run_name=settings.tracking.run_name) as run:
        yield run


def _param_text(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return text[:6000]
