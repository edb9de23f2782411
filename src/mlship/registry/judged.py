"""Runs that judge a model version on new data (``mlship evaluate``, ``mlship monitor``).

Both log one MLflow run tagged with the version they judged, its metrics next to the
version's training figures (``delta_<metric>``), and tag the version back with the run, so
the registry page of a version leads to every verdict on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlship.model.saved import ModelInfo
from mlship.registry.tracking import check_store, client, git_state

Artifacts = Callable[[str], list[Path]]  # given the run id, the files to attach


@dataclass(frozen=True)
class Verdict:
    """What a judging run records about one model version on one batch of data."""

    kind: str  # "evaluation" or "monitoring": the run's name prefix and ``mlship.kind``
    info: ModelInfo
    data: tuple[str, str]  # the data's URI and content digest
    rows: int
    metrics: Mapping[str, float]
    tags: Mapping[str, str] = field(default_factory=dict)
    link_tag: str = ""  # the version tag pointing back at the run


def log_verdict(tracking: tuple[str, str], verdict: Verdict, artifacts: Artifacts | None) -> str:
    """Log ``verdict`` as a finished run of ``tracking``'s experiment; the run id."""
    from mlflow.entities import Metric, Param

    uri, experiment = tracking
    info = verdict.info
    check_store(uri, experiment)
    mlflow = client(uri)
    prefix = {"evaluation": "evaluate", "monitoring": "monitor"}.get(verdict.kind, verdict.kind)
    tags = {
        "mlflow.runName": f"{prefix}-{info.name}-v{info.version}",
        "mlship.kind": verdict.kind,
        "mlship.model_name": info.name,
        "mlship.model_version": info.version,
        "mlship.model_run_id": info.run_id,
        "data.uri": verdict.data[0],
        "data.sha256": verdict.data[1],
        **verdict.tags,
        **git_state(),
    }
    run = mlflow.create_run(mlflow.get_experiment_by_name(experiment).experiment_id, tags=tags)
    run_id = str(run.info.run_id)
    stamp = run.info.start_time
    values = dict(verdict.metrics) | {
        f"delta_{k}": v - info.metrics[k] for k, v in verdict.metrics.items() if k in info.metrics
    }
    mlflow.log_batch(
        run_id,
        metrics=[Metric(k, float(v), stamp, 0) for k, v in values.items()],
        params=[Param("data.rows", str(verdict.rows))],
    )
    for path in artifacts(run_id) if artifacts else []:
        mlflow.log_artifact(run_id, str(path), prefix)
    mlflow.set_terminated(run_id, "FINISHED")
    # The version may live in another store (a model dir from elsewhere): the link back is a
    # courtesy; the run is logged and tagged either way.
    if verdict.link_tag:
        with contextlib.suppress(Exception):
            mlflow.set_model_version_tag(info.name, info.version, verdict.link_tag, run_id)
    return run_id
