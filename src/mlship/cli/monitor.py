"""``mlship monitor``: a batch of rows (or logged requests) against the model's training profile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlship.cli.common import (
    DEFAULT_CONFIG,
    DEFAULT_ENV_DIR,
    ConfigOpt,
    EnvDirOpt,
    EnvOpt,
    OverridesArg,
    error_line,
    guarded,
    out,
    progress,
    tracking_for,
)

DRIFT_EXIT = 2


def monitor(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model dir, or models:/name@alias, models:/name/N.")
    ],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            "-d",
            help="Rows: CSV/Parquet file or Parquet folder, any fsspec URI.",
        ),
    ],
    target: Annotated[
        str | None,
        typer.Option("--target", help="Label column: also report the performance change."),
    ] = None,
    fail_on_drift: Annotated[
        bool,
        typer.Option("--fail-on-drift", help="Exit 2 when monitor.drift_share of features drift."),
    ] = False,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where summary.json and report.html go.")
    ] = Path("monitoring"),
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="Default: from config.")
    ] = None,
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", help="Experiment of the monitoring run (default: config)."),
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    env: EnvOpt = None,
    env_dir: EnvDirOpt = DEFAULT_ENV_DIR,
    overrides: OverridesArg = None,
) -> None:
    """Compare a batch with the model's reference profile: drift per feature and prediction.

    Thresholds: monitor.psi_threshold, monitor.p_value, monitor.drift_share (config or
    key=value overrides).
    """

    def body() -> int:
        from mlship.config import MonitorConfig
        from mlship.monitoring.job import Request, run_monitor
        from mlship.registry.tracking import quiet_mlflow

        read = config.exists() or bool(overrides)  # for the monitor section
        tracking, settings = tracking_for(
            tracking_uri, experiment, config, env, env_dir, overrides, read_config=read
        )
        cfg = MonitorConfig() if settings is None else settings.monitor
        quiet_mlflow()
        with progress("starting") as step:
            request = Request(model, data, target, output, cfg)
            result = run_monitor(request, tracking, step)
        info = result.info
        table = Table(title=f"{info.name} v{info.version}: {result.rows:,} rows vs training")
        for name in ("column", "PSI", "p-value", "nulls", "drifted"):
            table.add_column(name, justify="left" if name == "column" else "right")
        for d in result.features + result.prediction:
            label = d.name if d in result.features else f"[{d.name}]"
            table.add_row(escape(label), f"{d.psi:.3f}", f"{d.p_value:.3g}",
                          f"{d.null_rate:.2f}", "yes" if d.drifted else "")  # fmt: skip
        out.print(table)
        for name, value in result.metrics.items():
            before = info.metrics.get(name)
            change = "" if before is None else f" ({value - before:+.4f} vs training)"
            out.print(f"{name} {value:.4f}{change}", highlight=False)
        share = f"{len(result.drifted)} of {len(result.features)} features drifted"
        out.print(f"{share} ({result.drift_share:.0%}): {', '.join(result.drifted) or 'none'}",
                  highlight=False)  # fmt: skip
        out.print(f"report: {output / 'report.html'}; monitoring run: {result.run_id}",
                  highlight=False)  # fmt: skip
        if fail_on_drift and result.failed:
            limit = f"monitor.drift_share is {cfg.drift_share:g}"
            error_line(f"drift: {share} ({result.drift_share:.0%}); {limit}")
            return DRIFT_EXIT
        return 0

    code = guarded(body)
    if code:
        raise typer.Exit(code)
