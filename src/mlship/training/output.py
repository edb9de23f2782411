"""The model dir's side of a training job: proven writable before any work, cleared of what a
killed run left, and written last; a version whose export fails is taken out of the registry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from mlship.config import Settings
from mlship.errors import MlshipError, StorageError
from mlship.registry.models import export_model
from mlship.registry.tracking import RegisteredModel, client
from mlship.storage import check_replaceable, check_writable, clean_beside, clean_temp_dirs

# The job's scratch dir in the system temp folder, and all it ever holds.
WORK_STEM = "mlship"
WORK_PARTS = frozenset({"onnx", "plots", "profile"})
TAG_LIMIT = 5000
Progress = Callable[[str], None]


def prepare_output(dest: Path, progress: Progress) -> None:
    """Before any work: refuse an output that cannot be written; clear a killed run's leftovers."""
    check_replaceable(dest)
    check_writable(dest)
    for line in clean_beside(dest) + clean_temp_dirs(WORK_STEM, WORK_PARTS):
        progress(line)


def export(settings: Settings, registered: RegisteredModel, progress: Progress) -> None:
    """Write the model dir; if that fails, take the version back out of the registry."""
    dest = settings.output.model_dir
    progress(f"exporting version {registered.version} to {dest}")
    try:
        export_model(settings.tracking.uri, registered.name, registered.version, dest)
    except BaseException as exc:
        reason = _reason(exc)
        outcome = withdraw(settings.tracking.uri, registered, reason)
        if isinstance(exc, MlshipError | OSError):
            raise StorageError(f"exporting to {dest} failed: {reason}; {outcome}") from None
        raise


def withdraw(uri: str, registered: RegisteredModel, reason: str) -> str:
    """Delete a version whose model dir was never written: the registry lists exported models.

    The run keeps the logged model and says why (tags ``mlship.exported=false`` and
    ``mlship.export_error``). Returns what became of the version, as a clause for the error.
    """
    mlflow_client = client(uri)
    name, version = registered.name, registered.version
    try:
        mlflow_client.delete_model_version(name, version)
        outcome = (
            f"version {version} of {name!r} was withdrawn from the registry "
            f"(run {registered.run_id} keeps the model, tagged mlship.exported=false)"
        )
    except Exception:
        try:
            mlflow_client.set_model_version_tag(name, version, "mlship.exported", "false")
            outcome = f"version {version} of {name!r} could not be deleted; tagged it "
            outcome += "mlship.exported=false"
        except Exception:
            outcome = f"version {version} of {name!r} is left in the registry without a model dir"
    with contextlib.suppress(Exception):
        mlflow_client.set_tag(registered.run_id, "mlship.exported", "false")
        mlflow_client.set_tag(registered.run_id, "mlship.export_error", reason[:TAG_LIMIT])
    return outcome


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
