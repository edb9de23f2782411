"""What a search leaves behind: the overlay file of its best params, and the parent run's
record (best params and value, Optuna's optimisation-history and parameter-importance plots,
every trial as CSV)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from mlship.config import Settings
from mlship.errors import StorageError


def yaml_scalar(value: Any) -> str:
    """A value as a ``key=value`` override spells it (read back as YAML)."""
    text: str = yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix("...").strip()


def overrides(settings: Settings, params: dict[str, Any]) -> list[str]:
    algo = settings.model.name
    return [f"model.name={algo}"] + [
        f"model.params.{algo}.{k}={yaml_scalar(v)}" for k, v in params.items()
    ]


def write_overlay(
    settings: Settings, params: dict[str, Any], value: float, study: str, metric: str
) -> Path:
    """The best params as a config overlay (usable as ``--env-dir DIR --env STEM``), atomically."""
    dest = settings.tune.overlay
    algo = settings.model.name
    merged = {**settings.model.chosen_params(), **params}
    body = yaml.safe_dump({"model": {"name": algo, "params": {algo: merged}}}, sort_keys=False)
    head = (
        f"# mlship tune: best of study {study!r}, CV {metric} {value:.4f} "
        f"({settings.tune.cv_folds} folds of the training part)\n"
    )
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(head + body, encoding="utf-8")
        tmp.replace(dest)
    except OSError as exc:
        raise StorageError(f"tune.overlay {dest}: cannot write it ({exc.strerror})") from None
    return dest


def _plots(study: Any, work: Path) -> list[Path]:
    """The two Optuna plots (matplotlib); a plot Optuna cannot draw yet is left out."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ov

    drawn = []
    for name, draw in (
        ("optimization_history", ov.plot_optimization_history),
        ("param_importances", ov.plot_param_importances),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                axes = draw(study)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # e.g. importances need two completed trials and a varying param
        figure: Any = axes.figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        figure.savefig(work / f"{name}.png", dpi=100)
        plt.close(figure)
        drawn.append(work / f"{name}.png")
    return drawn


def _importances(study: Any) -> dict[str, float]:
    import optuna

    try:
        found = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError, ZeroDivisionError):
        return {}
    return {k: float(v) for k, v in found.items()}


def log_study(
    mlflow: Any, run_id: str, study: Any, work: Path, best: tuple[str, Any, float]
) -> None:
    """Best params and value, the plots, importances and every trial on the parent run."""
    from mlflow.entities import Metric, Param

    metric, params, value = best
    stamp = mlflow.get_run(run_id).info.start_time
    logged = [Param(f"best.{k}", str(v)[:6000]) for k, v in params.items()]
    logged += [Param("tune.metric", metric), Param("tune.trials_in_study", str(len(study.trials)))]
    mlflow.log_batch(run_id, metrics=[Metric(f"best_cv_{metric}", value, stamp, 0)], params=logged)
    for path in _plots(study, work):
        mlflow.log_artifact(run_id, str(path), artifact_path="plots")
    (work / "param_importances.json").write_text(json.dumps(_importances(study), indent=2))
    frame = study.trials_dataframe()
    frame.to_csv(work / "trials.csv", index=False)
    for name in ("param_importances.json", "trials.csv"):
        mlflow.log_artifact(run_id, str(work / name), artifact_path="study")
