"""The ``mlship`` command line: train, predict, promote, config (serve and image come later).

Commands import their heavy modules (MLflow, scikit-learn) inside the function body so
``mlship --help`` answers instantly. Errors of ours print as one line and exit 1; ``--debug``
shows the traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from mlship.config import DEFAULT_CONFIG, DEFAULT_ENV_DIR
from mlship.errors import InputError, MlshipError

app = typer.Typer(
    help="Train tabular models from config, track them in MLflow, and serve them fast.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect the training configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
image_app = typer.Typer(help="Build the scoring image for a model.", no_args_is_help=True)
app.add_typer(image_app, name="image")

console = Console(stderr=True)
out = Console()
_state: dict[str, bool] = {"debug": False}
T = TypeVar("T")

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="Base YAML config file.", show_default=True)
]
EnvOpt = Annotated[
    str | None,
    typer.Option("--env", "-e", envvar="MLSHIP_ENV", help="Overlay configs/env/<ENV>.yaml."),
]
EnvDirOpt = Annotated[Path, typer.Option("--env-dir", help="Folder of environment overlays.")]
OverridesArg = Annotated[
    list[str] | None, typer.Argument(help="Overrides as key.sub=value (YAML values).")
]


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """mlship: notebook model to production."""
    _state["debug"] = debug


def guarded(action: Callable[[], T]) -> T:
    """Run a command body; our errors become one red line and exit code 1."""
    try:
        return action()
    except MlshipError as exc:
        if _state["debug"]:
            raise
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        if isinstance(exc, InputError) and len(exc.details) > 1:
            for detail in exc.details[1:5]:
                console.print(f"  also: {detail}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]")
        raise typer.Exit(130) from None


def _settings(config: Path, env: str | None, overrides: list[str] | None, env_dir: Path) -> Any:
    from mlship.config import load_settings

    return load_settings(config, env, overrides or [], env_dir)


@app.command()
def train(
    overrides: OverridesArg = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    env: EnvOpt = None,
    env_dir: EnvDirOpt = DEFAULT_ENV_DIR,
) -> None:
    """Train the configured model, track the run in MLflow, register and save it."""

    def body() -> None:
        settings = _settings(config, env, overrides, env_dir)
        from mlship import train as train_mod
        from mlship.tracking import quiet_mlflow

        quiet_mlflow()
        with console.status("starting", spinner="dots") as status:

            def step(message: str) -> None:
                console.log(message)
                status.update(message)

            result = train_mod.run(settings, env=env, config_path=config, progress=step)
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
        summary.add_row("tracking", result.tracking_uri)
        summary.add_row("rows", f"{result.rows_train:,} train / {result.rows_test:,} holdout")
        out.print(summary)

    guarded(body)


class Engine(StrEnum):
    local = "local"
    spark = "spark"


class OnErrorChoice(StrEnum):
    fail = "fail"
    skip = "skip"


@app.command()
def predict(
    model: Annotated[str, typer.Option("--model", "-m", help="Saved model dir.")],
    input_uri: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="CSV or Parquet: a file, directory or glob; path or URI."
        ),
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="Parquet, or CSV by extension; replaced only on success."
        ),
    ],
    batch_rows: Annotated[
        int, typer.Option(min=1, help="Rows per batch (bounds memory).")
    ] = 50_000,
    id_column: Annotated[
        str | None, typer.Option(help="Input column copied to the output to join on.")
    ] = None,
    on_error: Annotated[
        OnErrorChoice,
        typer.Option(help="fail: stop at the first bad row; skip: score the rest, report it."),
    ] = OnErrorChoice.fail,
    rejected: Annotated[
        str | None,
        typer.Option(help="With --on-error skip: write the bad rows (and why) here too."),
    ] = None,
    engine: Annotated[
        Engine, typer.Option(help="local: stream on this machine; spark: a Spark job.")
    ] = Engine.local,
    master: Annotated[
        str | None,
        typer.Option(help="--engine spark: master URL, e.g. local[2] (default: spark-submit's)."),
    ] = None,
) -> None:
    """Score a file, directory or glob with a saved model: predictions plus class probabilities.

    Output appears whole or not at all. The spark engine writes a directory of parts.
    """

    def body() -> None:
        if rejected and on_error is not OnErrorChoice.skip:
            raise MlshipError("--rejected needs --on-error skip")
        mode: Literal["fail", "skip"] = "skip" if on_error is OnErrorChoice.skip else "fail"
        try:
            if engine is Engine.spark:
                result = _predict_spark(
                    model, input_uri, output, batch_rows, id_column, mode, rejected, master
                )
            else:
                result = _predict_local(
                    model, input_uri, output, batch_rows, id_column, mode, rejected
                )
        except InputError as exc:  # located bad rows: print them as lines, not dicts
            if _state["debug"] or not exc.details or "file" not in exc.details[0]:
                raise
            from mlship.batch import describe

            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            for problem in exc.details[1:5]:
                console.print(
                    f"  also: {describe(problem)}", highlight=False, markup=False, soft_wrap=True
                )
            raise typer.Exit(1) from None
        out.print(
            f"scored {result.scored:,} rows -> {result.output}", highlight=False, soft_wrap=True
        )
        if result.rejected:
            console.print(
                f"[yellow]skipped {result.rejected:,} bad row(s)[/]"
                + (f", written to {result.rejected_output}" if result.rejected_output else ""),
                highlight=False,
                soft_wrap=True,
            )
            from mlship.batch import describe

            for problem in result.problems:
                console.print(
                    f"  {describe(problem)}", highlight=False, markup=False, soft_wrap=True
                )

    guarded(body)


def _predict_local(
    model: str,
    input_uri: str,
    output: str,
    batch_rows: int,
    id_column: str | None,
    on_error: Literal["fail", "skip"],
    rejected: str | None,
) -> Any:
    try:
        from mlship import batch
    except ImportError as exc:
        raise MlshipError(
            f"batch scoring needs the 'batch' extra (pip install 'mlship[batch]'): {exc}"
        ) from None
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from mlship.predictor import Predictor

    predictor = Predictor.load(model, extra_columns="ignore")
    columns = (
        TextColumn("scoring"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:,} rows  {task.fields[rate]:,.0f} rows/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("scoring", total=None, rows=0, rate=0.0)

        def tick(state: batch.Tick) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = state.rows / elapsed if elapsed > 0 else 0.0
            bar.update(task, completed=state.done, total=state.total, rows=state.rows, rate=rate)

        return batch.score(
            predictor,
            input_uri,
            output,
            batch_rows=batch_rows,
            id_column=id_column,
            on_error=on_error,
            rejected_uri=rejected,
            progress=tick,
        )


def _predict_spark(
    model: str,
    input_uri: str,
    output: str,
    batch_rows: int,
    id_column: str | None,
    on_error: Literal["fail", "skip"],
    rejected: str | None,
    master: str | None,
) -> Any:
    from mlship import spark

    with console.status(f"starting Spark ({master or 'master from spark-submit'})") as status:
        session = spark.session(master, batch_rows)
        try:
            status.update(f"scoring {input_uri} with Spark")
            return spark.score(
                session,
                Path(model),
                input_uri,
                output,
                batch_rows=batch_rows,
                id_column=id_column,
                on_error=on_error,
                rejected_uri=rejected,
            )
        finally:
            session.stop()


@app.command()
def promote(
    to: Annotated[str, typer.Option("--to", help="Alias to move, e.g. champion.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Registered model (default: from config).")
    ] = None,
    version: Annotated[str | None, typer.Option("--version", help="Version number.")] = None,
    alias: Annotated[
        str | None, typer.Option("--alias", help="Promote the version holding this alias.")
    ] = None,
    if_better: Annotated[
        str | None,
        typer.Option("--if-better", help="Only if this holdout metric beats the alias holder."),
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="Default: from config.")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    env: EnvOpt = None,
    env_dir: EnvDirOpt = DEFAULT_ENV_DIR,
) -> None:
    """Move a registry alias (e.g. candidate -> champion), optionally gated on a metric."""

    def body() -> None:
        from mlship.tracking import promote as do_promote
        from mlship.tracking import quiet_mlflow
        from mlship.tracking import tracking_uri as resolve_uri

        if (version is None) == (alias is None):
            raise MlshipError("give exactly one of --version or --alias")
        model_name, uri = name, tracking_uri
        if model_name is None or uri is None:
            settings = _settings(config, env, [], env_dir)
            model_name = model_name or settings.tracking.registered_model
            uri = uri or settings.tracking.uri
        quiet_mlflow()
        result = do_promote(resolve_uri(uri), model_name, str(version or alias), to, if_better)
        if result.promoted:
            out.print(f"promoted {model_name} v{result.version} to @{to}: {result.reason}")
        else:
            out.print(f"not promoted: {result.reason}")

    guarded(body)


@app.command()
def serve(
    model: Annotated[Path, typer.Option("--model", "-m", help="Saved model dir.")],
    contract: Annotated[
        str | None,
        typer.Argument(hidden=True, help="'serve' selects SageMaker's contract (port 8080)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "0.0.0.0",
    port: Annotated[
        int | None, typer.Option(help="Port (default 8888, or PORT / AIP_HTTP_PORT).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    runtime: Annotated[
        str,
        typer.Option(
            envvar="MLSHIP_RUNTIME",
            help="auto (ONNX when its parity check passed, else scikit-learn), onnx or sklearn.",
        ),
    ] = "auto",
    threads: Annotated[int, typer.Option(min=1, help="BLAS/OpenMP threads per worker.")] = 1,
    max_rows: Annotated[int, typer.Option(min=1, help="Most rows per request.")] = 10_000,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body, MB.")] = 10.0,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Serve a saved model over HTTP: POST /score, /health, /ready, /metadata, /metrics."""

    def body() -> None:
        if contract not in (None, "serve"):
            raise MlshipError(f"unexpected argument {contract!r} (only 'serve' is known)")
        if not (model / "MLmodel").is_file():
            raise MlshipError(f"--model {model}: not a saved model dir (no MLmodel file)")
        if runtime not in ("auto", "onnx", "sklearn"):
            raise MlshipError(f"--runtime {runtime!r}: choose auto, onnx or sklearn")
        from dataclasses import replace

        from mlship.service import OPTIONS_ENV, ServeOptions, apply_platform, options_to_env

        # Pin math-library pools before numpy loads here or in a worker (measured: two
        # OpenMP workers with default threads fell from 65 to 1 request/s on 2 cores).
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
        options = ServeOptions(
            model_dir=str(model.resolve()),
            host=host,
            workers=workers,
            threads=threads,
            runtime=runtime,
            max_rows=max_rows,
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            access_log=access_log,
        )
        options = apply_platform(options, os.environ, sagemaker=contract == "serve")
        if port is not None:
            options = replace(options, port=port)
        os.environ[OPTIONS_ENV] = options_to_env(options)
        import uvicorn

        console.print(
            f"serving {model} on http://{options.host}:{options.port} "
            f"({workers} worker(s), {threads} thread(s) each)",
            highlight=False,
        )
        uvicorn.run(
            "mlship.service:app_from_env",
            factory=True,
            host=options.host,
            port=options.port,
            workers=workers,
            loop="auto",
            http="auto",
            access_log=access_log,
            log_level="info",
            timeout_graceful_shutdown=20,
        )

    guarded(body)


@image_app.command("build")
def image_build(
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="Saved model dir, models:/NAME@ALIAS or models:/NAME/VERSION."
        ),
    ],
    tag: Annotated[str | None, typer.Option(help="Image tag (default NAME:VERSION).")] = None,
    base_image: Annotated[
        str | None, typer.Option(help="Override the Dockerfile's BASE_IMAGE.")
    ] = None,
    context: Annotated[Path, typer.Option(help="Build context (the repo root).")] = Path(),
    dockerfile: Annotated[Path, typer.Option("--file", "-f", help="Dockerfile.")] = Path(
        "Dockerfile"
    ),
    tracking_uri: Annotated[
        str | None, typer.Option(help="Registry for models:/ URIs (default: from config).")
    ] = None,
    runtime: Annotated[
        str, typer.Option(help="auto (onnx when the model passed parity), onnx or sklearn.")
    ] = "auto",
    config: ConfigOpt = DEFAULT_CONFIG,
    env: EnvOpt = None,
    env_dir: EnvDirOpt = DEFAULT_ENV_DIR,
) -> None:
    """Build the scoring image with a saved or registered model baked in."""

    def body() -> None:
        from mlship.image import REGISTRY_URI, build
        from mlship.tracking import quiet_mlflow
        from mlship.tracking import tracking_uri as resolve_uri

        uri = tracking_uri
        if uri is None and REGISTRY_URI.match(model):
            uri = _settings(config, env, [], env_dir).tracking.uri
        quiet_mlflow()
        result = build(
            model,
            tag=tag,
            context=context,
            dockerfile=dockerfile,
            base_image=base_image,
            tracking_uri=resolve_uri(uri),
            runtime=runtime,
        )
        out.print(
            f"built {result.tag} ({result.name} v{result.version}, run {result.run_id}, "
            f"runtime {result.runtime})",
            highlight=False,
        )

    guarded(body)


@config_app.command("show")
def config_show(
    overrides: OverridesArg = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    env: EnvOpt = None,
    env_dir: EnvDirOpt = DEFAULT_ENV_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML.")] = False,
) -> None:
    """Print the resolved, validated config (all layers and overrides applied)."""

    def body() -> None:
        from mlship.config import settings_to_yaml

        settings = _settings(config, env, overrides, env_dir)
        if as_json:
            from mlship.config import public_dump

            out.print_json(json.dumps(public_dump(settings)))
        else:
            sys.stdout.write(settings_to_yaml(settings))

    guarded(body)


@config_app.command("schema")
def config_schema() -> None:
    """Print the config's JSON schema (every key, type, default and description)."""
    from mlship.config import Settings

    sys.stdout.write(json.dumps(Settings.model_json_schema(), indent=2) + "\n")


def run() -> None:  # pragma: no cover - console script indirection for python -m
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":  # pragma: no cover
    run()
