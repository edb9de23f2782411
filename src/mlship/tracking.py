"""Everything that talks to MLflow: the run, lineage, the registry, export and promotion."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mlship.config import DEFAULT_TRACKING_URI, Settings
from mlship.errors import TrackingError
from mlship.storage import atomic_dir

MODEL_INFO_FILE = "mlship.json"
CONFIG_ARTIFACT = "config/resolved.yaml"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.yaml"


def tracking_uri(configured: str | None) -> str:
    """Config wins, then MLFLOW_TRACKING_URI, then the embedded SQLite store."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def quiet_mlflow() -> None:
    """Keep MLflow's and Alembic's INFO chatter (DB migrations, schema hints) off the console.

    Our own progress lines say what is happening; MLflow's warnings about integer columns
    concern its dataset preview, not the model signature (we declare features as float64).
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


def set_alias(uri: str, name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``; done last, once the model dir is safely exported."""
    client(uri).set_registered_model_alias(name, alias, version)


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


def _run_metrics(mlflow_client: Any, run_id: str) -> dict[str, float]:
    return dict(mlflow_client.get_run(run_id).data.metrics)


def resolve_version(mlflow_client: Any, name: str, version_or_alias: str) -> Any:
    """A registry version by number or by alias; a clear error if neither exists."""
    from mlflow.exceptions import MlflowException

    try:
        if version_or_alias.isdigit():
            return mlflow_client.get_model_version(name, version_or_alias)
        return mlflow_client.get_model_version_by_alias(name, version_or_alias)
    except MlflowException as exc:
        raise TrackingError(
            f"registered model {name!r} has no version or alias {version_or_alias!r} "
            f"({exc.message.splitlines()[0] if exc.message else exc})"
        ) from None


def export_model(uri: str, name: str, version_or_alias: str, dest: Path) -> Path:
    """Copy a registered model version to ``dest`` (atomically) with its metrics and config.

    The dir holds the MLflow model (MLmodel, signature, input example, requirements) plus
    ``mlship.json`` (name, version, run id, metrics), ``metrics.json`` and ``config.yaml``.
    """
    import mlflow

    mlflow_client = client(uri)
    mv = resolve_version(mlflow_client, name, str(version_or_alias))
    metrics = _run_metrics(mlflow_client, mv.run_id)
    info = {
        "name": name,
        "version": str(mv.version),
        "run_id": mv.run_id,
        "tracking_uri": uri,
        "metrics": metrics,
    }
    with atomic_dir(dest) as tmp, active_store(uri):
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{mv.version}", dst_path=str(tmp), tracking_uri=uri
        )
        _copy_run_config(mv.run_id, uri, tmp)
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        (tmp / MODEL_INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return dest


def _copy_run_config(run_id: str, uri: str, dest: Path) -> None:
    """Copy the run's resolved training config beside the model, if the run logged one."""
    import shutil

    import mlflow
    from mlflow.exceptions import MlflowException

    staging = dest / ".config-download"
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=CONFIG_ARTIFACT, dst_path=str(staging), tracking_uri=uri
        )
        Path(local).rename(dest / CONFIG_FILE)
    except (MlflowException, OSError):
        pass  # a version registered by other tooling may have no mlship config
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    reason: str
    version: str
    previous: str | None


def promote(uri: str, name: str, source: str, to: str, if_better: str | None = None) -> Promotion:
    """Point alias ``to`` at the version named by ``source`` (number or alias).

    With ``if_better``, only when the candidate's holdout metric beats the current holder's
    (lower is better for losses and errors), or nobody holds the alias yet.
    """
    from mlflow.exceptions import MlflowException

    from mlship.evaluate import LOWER_IS_BETTER

    mlflow_client = client(uri)
    candidate = resolve_version(mlflow_client, name, source)
    try:
        champion = mlflow_client.get_model_version_by_alias(name, to)
    except MlflowException:
        champion = None
    previous = str(champion.version) if champion is not None else None
    if previous == str(candidate.version):
        return Promotion(False, f"version {previous} already holds @{to}", previous, previous)
    if if_better and champion is not None:
        mine = _run_metrics(mlflow_client, candidate.run_id)
        theirs = _run_metrics(mlflow_client, champion.run_id)
        if if_better not in mine:
            known = ", ".join(sorted(k for k in mine if not k.startswith("cv_"))) or "none"
            raise TrackingError(
                f"--if-better {if_better}: version {candidate.version} has no such metric "
                f"(has: {known})"
            )
        if if_better not in theirs:
            reason = f"@{to} version {previous} has no {if_better}; promoting"
        else:
            lower = if_better in LOWER_IS_BETTER
            better = (
                mine[if_better] < theirs[if_better]
                if lower
                else mine[if_better] > theirs[if_better]
            )
            comparison = (
                f"{if_better} {mine[if_better]:.4f} (v{candidate.version}) vs "
                f"{theirs[if_better]:.4f} (v{previous}, @{to})"
            )
            if not better:
                return Promotion(
                    False, f"not better: {comparison}", str(candidate.version), previous
                )
            reason = f"better: {comparison}"
    elif champion is None:
        reason = f"no version held @{to} yet"
    else:
        reason = f"replacing version {previous} unconditionally"
    mlflow_client.set_registered_model_alias(name, to, candidate.version)
    return Promotion(True, reason, str(candidate.version), previous)


def log_training(
    settings: Settings,
    *,
    uri: str,
    tags: dict[str, str],
    params: dict[str, Any],
    metrics: dict[str, float],
    artifacts: list[Path],
    config_yaml: str,
    dataset: Any,
    model: Any,
    signature: Any,
    input_example: Any,
    metadata: dict[str, Any],
    requirements: list[str],
    extra_files: list[Path] | None = None,
) -> RegisteredModel:
    """One MLflow run: tags, params, metrics, plots, config, lineage, the model and its version."""
    import mlflow
    import mlflow.sklearn

    check_store(uri, settings.tracking.experiment)
    with active_store(uri), _experiment_run(settings) as run:
        mlflow.set_tags(tags)
        mlflow.log_params({k: _param_text(v) for k, v in params.items()})
        mlflow.log_metrics(metrics)
        if dataset is not None:
            mlflow.log_input(dataset, context="training")
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path="plots")
        mlflow.log_text(config_yaml, CONFIG_ARTIFACT)
        mlflow.log_dict(metrics, "metrics.json")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=input_example,
            # Plain pickle, not MLflow's default skops: importing skops.io alone takes ~6 s
            # here (it enumerates every scikit-learn estimator), which would dominate the
            # scoring container's cold start. The artifact is ours, written by this job.
            serialization_format="pickle",
            pip_requirements=requirements,
            metadata=metadata,
            extra_files=[str(p) for p in extra_files or []] or None,
            registered_model_name=settings.tracking.registered_model,
        )
        version = str(info.registered_model_version)
        mlflow.set_tag("registered_model.version", version)
    return RegisteredModel(
        name=settings.tracking.registered_model,
        version=version,
        run_id=run.info.run_id,
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
