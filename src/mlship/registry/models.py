"""Registered model versions: find one by number or alias, export it, point an alias at it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlship.errors import TrackingError
from mlship.model import layout
from mlship.model.manifest import write_manifest
from mlship.model.writer import write_identity
from mlship.registry.tracking import CONFIG_ARTIFACT, active_store, client, record_manifest_digest
from mlship.registry.uri import registry_ref
from mlship.storage import atomic_dir


def set_alias(uri: str, name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``; done last, once the model dir is safely exported."""
    client(uri).set_registered_model_alias(name, alias, version)


def run_metrics(mlflow_client: Any, run_id: str) -> dict[str, float]:
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


def local_model(source: str, uri: str, work: Path, progress: Callable[[str], None]) -> Path:
    """The model dir ``source`` names: itself, or the registered version a ``models:/`` URI
    names, exported from ``uri`` into ``work / "model"`` (saying so through ``progress``)."""
    ref = registry_ref(source)
    if ref is None:
        return Path(source)
    progress(f"exporting {source} from {uri}")
    return export_model(uri, *ref, work / "model")


def export_model(uri: str, name: str, version_or_alias: str, dest: Path) -> Path:
    """Copy a registered model version to ``dest`` (atomically) with its metrics and config.

    The dir holds the MLflow model (MLmodel, signature, input example, requirements) plus
    ``mlship.json`` (name, version, run id, metrics), ``metrics.json``, ``config.yaml`` and,
    written last, ``manifest.json`` (size and SHA-256 of every file). The manifest's digest is
    recorded on the run and the version (tag ``model.manifest_sha256``, set by the version's
    first export) before the dir is moved into place.
    """
    import mlflow

    mlflow_client = client(uri)
    mv = resolve_version(mlflow_client, name, str(version_or_alias))
    run = mlflow_client.get_run(mv.run_id)
    with atomic_dir(dest) as tmp, active_store(uri):
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{mv.version}", dst_path=str(tmp), tracking_uri=uri
        )
        _copy_run_config(mv.run_id, uri, tmp)
        write_identity(
            tmp,
            name=name,
            version=str(mv.version),
            run_id=mv.run_id,
            tracking_uri=uri,
            metrics=dict(run.data.metrics),
        )
        digest = write_manifest(tmp, name=name, version=str(mv.version), run_id=mv.run_id)
        record_manifest_digest(mlflow_client, mv, dict(run.data.tags), digest)
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
        Path(local).rename(dest / layout.CONFIG)
    except (MlflowException, OSError):
        pass  # a version registered by other tooling may have no mlship config
    finally:
        shutil.rmtree(staging, ignore_errors=True)
