"""``mlship evaluate``: a model on new labelled data, against its training holdout and floors."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mlship.cli.common import (
    DEFAULT_CONFIG,
    DEFAULT_ENV_DIR,
    ConfigOpt,
    EnvDirOpt,
    EnvOpt,
    error_line,
    guarded,
    out,
    progress,
    tracking_for,
)

BREACH_EXIT = 2


def evaluate(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model dir, or models:/name@alias, models:/name/N.")
    ],
    data: Annotated[str, typer.Option("--data", "-d", help="Labelled table: path or fsspec URI.")],
    fail_below: Annotated[
        list[str] | None,
        typer.Option("--fail-below", help="METRIC=VALUE floor (repeat); exit 2 if one is broken."),
    ] = None,
    fail_above: Annotated[
        list[str] | None,
        typer.Option("--fail-above", help="METRIC=VALUE ceiling for losses (log_loss, rmse)."),
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="Default: from config.")
    ] = None,
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", help="Experiment of the evaluation run (default: config)."),
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    env: EnvOpt = None,
    env_dir: EnvDirOpt = DEFAULT_ENV_DIR,
) -> None:
    """Score a labelled dataset, compare with training's holdout, log an evaluation run."""

    def body() -> int:
        from mlship.registry.tracking import quiet_mlflow
        from mlship.training.assess import Floor
        from mlship.training.assess import evaluate as run_evaluation

        bounds = [Floor.parse(t) for t in fail_below or []]
        bounds += [Floor.parse(t, ceiling=True) for t in fail_above or []]
        tracking, _ = tracking_for(tracking_uri, experiment, config, env, env_dir)
        quiet_mlflow()
        with progress("starting") as step:
            result = run_evaluation(model, data, tracking, bounds, step)
        info = result.info
        table = Table(
            title=f"{info.name} v{info.version} on {result.rows:,} rows ({result.runtime})"
        )
        for name in ("metric", "this data", "training holdout", "change"):
            table.add_column(name, justify="left" if name == "metric" else "right")
        for name, value in result.metrics.items():
            before = result.training.get(name)
            shown = ("-", "-") if before is None else (f"{before:.4f}", f"{value - before:+.4f}")
            table.add_row(name, f"{value:.4f}", *shown)
        out.print(table)
        out.print(f"evaluation run: {result.run_id}", highlight=False)
        if result.breaches:
            error_line("; ".join(result.breaches))
            return BREACH_EXIT
        return 0

    code = guarded(body)
    if code:
        raise typer.Exit(code)
