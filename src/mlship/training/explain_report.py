"""A training run's explanations, logged as artifacts under ``explain/`` in its MLflow run.

- ``permutation_importance.csv`` (feature, importance_mean, importance_std) and its plot:
  how much the holdout's main metric (roc_auc, or rmse for regression) drops when a raw
  column is shuffled, ``explain.permutation_repeats`` times, on the fitted pipeline.
- ``shap_importance.csv`` (feature, one mean-|SHAP| column per explained output), its bar
  plot and ``shap_summary.png`` (each holdout row's contribution, coloured by the value).

The run is tagged ``explain.shap`` (tree, linear, permutation, or none and why) and
``explain.metric``. Explanations are a report, not a gate: whatever goes wrong in them is a
tag on the run and a warning line, never a failed training job. Both are computed single
threaded on at most ``explain.max_rows`` holdout rows, so the cost stays small.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlship.config import Settings, Task
from mlship.errors import ModelError
from mlship.registry.tracking import client
from mlship.storage import owned_prefix
from mlship.training.explain import Contributions, explain_rows, require_shap
from mlship.training.output import TAG_LIMIT, WORK_STEM, Progress

ARTIFACT_DIR = "explain"
TOP = 20  # features shown in a plot


def log_explanations(
    settings: Settings, data: Any, model: Any, run_id: str, progress: Progress
) -> dict[str, str]:
    """Compute and log the run's explanations; return the tags set (empty when disabled).

    ``data`` is the job's ``Prepared`` (its holdout and training part).
    """
    if not settings.explain.enabled:
        return {}
    from threadpoolctl import threadpool_limits

    with (
        tempfile.TemporaryDirectory(prefix=owned_prefix(WORK_STEM)) as work,
        threadpool_limits(limits=1),
    ):
        try:
            tags = _write(settings, data, model, Path(work), progress)
        except Exception as exc:  # a report, not a gate: the trained model stands
            reason = _first_line(exc)
            progress(f"warning: explanations failed: {reason}")
            tags = {"explain.error": reason[:TAG_LIMIT]}
        mlflow = client(settings.tracking.uri)
        if any(Path(work).iterdir()):
            mlflow.log_artifacts(run_id, work, ARTIFACT_DIR)
        for key, value in tags.items():
            mlflow.set_tag(run_id, key, value)
    return tags


def _write(
    settings: Settings, data: Any, model: Any, work: Path, progress: Progress
) -> dict[str, str]:
    cfg, seed = settings.explain, settings.split.seed
    x, y = data.parts.x_test, data.parts.y_test
    if len(x) > cfg.max_rows:
        x = x.sample(cfg.max_rows, random_state=seed)
        y = y.loc[x.index]
    classes, positive = data.dataset.classes, data.dataset.positive_class
    metric, scorer = main_metric(settings.task, classes)
    progress(
        f"permutation importance on {len(x):,} holdout rows ({metric}, "
        f"{cfg.permutation_repeats} repeats)"
    )
    perm = permutation_table(model, x, y, scorer, cfg.permutation_repeats, seed)
    perm.to_csv(work / "permutation_importance.csv")
    _permutation_plot(perm, metric, work / "permutation_importance.png")
    tags = {"explain.metric": metric, "explain.rows": str(len(x))}
    progress(f"SHAP values of {len(x):,} holdout rows")
    try:
        require_shap()
        explained = explain_rows(
            model, x, data.parts.x_train, classes if settings.task is Task.classification else [],
            positive, agnostic=False,
        )  # fmt: skip
    except ModelError as exc:  # no explainer fits, or shap is missing
        reason = _first_line(exc)
        progress(f"warning: no SHAP summary, permutation importance only: {reason}")
        why = f"none: {reason} (mlship explain has shap's model-agnostic explainer)"
        return tags | {"explain.shap": why[:TAG_LIMIT]}
    explained.mean_abs().to_csv(work / "shap_importance.csv")
    _shap_plots(explained, x, work)
    progress(f"SHAP by the {explained.explainer} explainer, in {explained.scale}")
    return tags | {
        "explain.shap": explained.explainer[:TAG_LIMIT],
        "explain.scale": explained.scale,
    }


def main_metric(task: Task, classes: list[str]) -> tuple[str, str]:
    """The metric permutation importance is scored with: (name, scikit-learn scorer)."""
    if task is Task.regression:
        return "rmse", "neg_root_mean_squared_error"
    return "roc_auc", "roc_auc" if len(classes) <= 2 else "roc_auc_ovr"


def permutation_table(
    pipeline: Any,
    x: pd.DataFrame,
    y: pd.Series,
    scorer: str,
    repeats: int,
    seed: int,
) -> pd.DataFrame:
    """Drop in the score when each raw column is shuffled: mean and std over ``repeats``."""
    from sklearn.inspection import permutation_importance

    found = permutation_importance(
        pipeline, x, y, scoring=scorer, n_repeats=repeats, random_state=seed, n_jobs=1
    )
    table = pd.DataFrame(
        {"importance_mean": found.importances_mean, "importance_std": found.importances_std},
        index=pd.Index([str(c) for c in x.columns], name="feature"),
    )
    return table.sort_values("importance_mean", ascending=False)


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _height(rows: int) -> float:
    return max(3.0, 0.3 * rows + 1.2)


def _permutation_plot(table: pd.DataFrame, metric: str, path: Path) -> None:
    top = table.head(TOP)[::-1]
    fig = _figure(7, _height(len(top)))
    ax = fig.add_subplot()
    ax.barh(list(top.index), top["importance_mean"], xerr=top["importance_std"], color="#4c72b0")
    ax.axvline(0.0, color="grey", linewidth=0.8)
    change = "rise" if metric in ("rmse",) else "drop"
    ax.set_xlabel(f"{change} in {metric} when shuffled (holdout)")
    ax.set_title(f"Permutation importance (top {len(top)})")
    fig.tight_layout()
    fig.savefig(path)


def _shap_plots(explained: Contributions, x: pd.DataFrame, work: Path) -> None:
    """The mean-|SHAP| bar (first output) and a dot per row and feature, coloured by value."""
    table = explained.mean_abs()
    output = explained.outputs[0]
    top = table.head(TOP)[::-1]
    fig = _figure(7, _height(len(top)))
    ax = fig.add_subplot()
    ax.barh(list(top.index), top[output], color="#dd8452")
    ax.set_xlabel(f"mean |SHAP| ({explained.scale} of {output})")
    ax.set_title(f"SHAP importance (top {len(top)})")
    fig.tight_layout()
    fig.savefig(work / "shap_importance.png")

    fig = _figure(8, _height(len(top)))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    position = {f: i for i, f in enumerate(explained.features)}
    for row, feature in enumerate(top.index):
        values = explained.values[:, position[feature], 0]
        colour = _colour(x[feature])
        jitter = rng.uniform(-0.25, 0.25, len(values))
        ax.scatter(values, row + jitter, c=colour, cmap="coolwarm", s=8, vmin=0, vmax=1)
    ax.set_yticks(range(len(top)), list(top.index))
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel(f"SHAP value ({explained.scale} of {output}); blue: low value, red: high")
    ax.set_title("SHAP summary (holdout rows)")
    fig.tight_layout()
    fig.savefig(work / "shap_summary.png")


def _colour(column: pd.Series) -> np.ndarray:
    """Numbers scaled to 0..1 by rank; categories (and missing values) mid-scale."""
    if not pd.api.types.is_numeric_dtype(column) or column.notna().sum() == 0:
        return np.full(len(column), 0.5)
    ranked = column.rank(pct=True).fillna(0.5)
    return ranked.to_numpy(dtype=float)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
