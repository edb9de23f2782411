"""``mlship tune``: an Optuna search on CV of the training part, tracked; ``--train`` trains it."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from mlship.cli.common import (
    DEFAULT_CONFIG,
    DEFAULT_ENV_DIR,
    ConfigOpt,
    EnvDirOpt,
    EnvOpt,
    OverridesArg,
    console,
    guarded,
    load_settings,
    out,
    progress,
)


def _bar() -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("best {task.fields[best]}"),
        console=console,
    )


def tune(
    overrides: OverridesArg = None,
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, help="Trials to run (default tune.trials).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds after which no trial starts.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Sampler seed (default tune.seed).")
    ] = None,
    study_name: Annotated[
        str | None, typer.Option("--study-name", help="Study to create or resume.")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option("--storage", help="Optuna storage URL (default sqlite:///optuna.db)."),
    ] = None,
    train_after: Annotated[
        bool,
        typer.Option("--train", help="Then train, register and export the tuned model."),
    ] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    env: EnvOpt = None,
    env_dir: EnvDirOpt = DEFAULT_ENV_DIR,
) -> None:
    """Search model.name's hyperparameters (tune.space) by CV on the training part."""

    def body() -> None:
        extra = [f"tune.study_name={study_name}"] if study_name else []
        extra += [f"tune.storage={storage}"] if storage else []
        settings = load_settings(config, env, [*(overrides or []), *extra], env_dir)
        from mlship.registry.tracking import quiet_mlflow
        from mlship.training import tune as tuning

        quiet_mlflow()
        request = tuning.request_for(settings, trials, timeout, seed)
        with _bar() as bar:
            task = bar.add_task(f"tuning {settings.model.name}", total=request.trials, best="-")

            def step(message: str) -> None:
                bar.console.log(message, markup=False, highlight=False)

            def trial_done(done: int, best: float | None) -> None:
                bar.update(task, completed=done, best="-" if best is None else f"{best:.4f}")

            result = tuning.run(request, step, trial_done)
        _report(result, settings)
        if train_after:
            _train(settings, result, env, config)

    guarded(body)


def _report(result: Any, settings: Any) -> None:
    from mlship.training.tune_report import overrides

    out.print(
        f"best CV {result.metric} {result.value:.4f} ({result.direction}) after "
        f"{result.trials_run} trials ({result.pruned} pruned; {result.trials_total} in study "
        f"{result.study_name!r} at {result.storage})",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        "overrides: " + " ".join(overrides(settings, result.params)),
        highlight=False,
        soft_wrap=True,
    )
    overlay = result.overlay
    out.print(
        f"overlay: {overlay} (mlship train --env-dir {overlay.parent} --env {overlay.stem})",
        highlight=False,
        soft_wrap=True,
    )
    out.print(f"parent run: {result.parent_run_id}", highlight=False, soft_wrap=True)


def _train(settings: Any, result: Any, env: str | None, config: Any) -> None:
    from mlship.training import job
    from mlship.training.tune import with_params

    tags = {"mlship.tune_parent_run": result.parent_run_id, "mlship.tune_study": result.study_name}
    tuned = with_params(settings, result.params, **tags)
    with progress("training the tuned model") as step:
        trained = job.run(tuned, env=env, config_path=config, progress=step)
    table = Table(title=f"{trained.registered.name} v{trained.registered.version} (tuned)")
    table.add_column("metric")
    table.add_column("holdout", justify="right")
    for name, value in trained.metrics.items():
        table.add_row(name, f"{value:.4f}")
    out.print(table)
    out.print(
        f"registered {trained.registered.name} v{trained.registered.version} "
        f"@{tuned.tracking.alias}, run {trained.registered.run_id}, model dir "
        f"{trained.model_dir}",
        highlight=False,
        soft_wrap=True,
    )
