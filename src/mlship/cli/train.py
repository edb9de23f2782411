"""``mlship train``."""

from __future__ import annotations

from rich.table import Table

from mlship.cli.common import (
    DEFAULT_CONFIG,
    DEFAULT_ENV_DIR,
    ConfigOpt,
    EnvDirOpt,
    EnvOpt,
    OverridesArg,
    guarded,
    load_settings,
    out,
    progress,
)


def train(
    overrides: OverridesArg = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    env: EnvOpt = None,
    env_dir: EnvDirOpt = DEFAULT_ENV_DIR,
) -> None:
    """Train the configured model, track the run in MLflow, register and save it."""

    def body() -> None:
        settings = load_settings(config, env, overrides, env_dir)
        from mlship.registry.tracking import quiet_mlflow
        from mlship.training import job

        quiet_mlflow()
        with progress("starting") as step:
            result = job.run(settings, env=env, config_path=config, progress=step)
        table = Table(title=f"{settings.tracking.registered_model} v{result.registered.version}")
        table.add_column("metric")
        table.add_column("holdout", justify="right")
        for name, value in result.metrics.items():
            table.add_row(name, f"{value:.4f}")
        out.print(table)
        summary = Table(show_header=False, box=None)
        summary.add_row("run id", result.registered.run_id)
        summary.add_row(
            "model",
            f"{result.registered.name} v{result.registered.version} (@{settings.tracking.alias})",
        )
        summary.add_row("model dir", str(result.model_dir))
        if result.decision:  # classifiers: argmax, or the threshold and how it was chosen
            summary.add_row("labels", result.decision)
        summary.add_row("tracking", result.tracking_uri)
        used = result.rows_train + result.rows_test
        summary.add_row(
            "rows",
            f"{result.rows_read:,} read, {used:,} used: "
            f"{result.rows_train:,} train / {result.rows_test:,} holdout",
        )
        if result.warnings:
            count = len(result.warnings)
            summary.add_row("data warnings", f"{count} (printed above; run tag data.warnings)")
        out.print(summary)

    guarded(body)
