"""``mlship predict``: score files with the local streaming engine or Spark."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlship.cli.common import console, guarded, note, out
from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.batch.options import BatchOptions
    from mlship.batch.report import BatchResult


class Engine(StrEnum):
    local = "local"
    spark = "spark"


class OnErrorChoice(StrEnum):
    fail = "fail"
    skip = "skip"


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
        try:
            from mlship.batch.options import BatchOptions
        except ImportError as exc:
            raise MlshipError(
                f"batch scoring needs the 'batch' extra (pip install 'mlship[batch]'): {exc}"
            ) from None
        options = BatchOptions(
            input_uri=input_uri,
            output_uri=output,
            batch_rows=batch_rows,
            id_column=id_column,
            on_error="skip" if on_error is OnErrorChoice.skip else "fail",
            rejected_uri=rejected,
        )
        if engine is Engine.spark:
            result = _spark(Path(model), options, master)
        else:
            result = _local(model, options)
        _report(result)

    guarded(body)


def _report(result: BatchResult) -> None:
    out.print(f"scored {result.scored:,} rows -> {result.output}", highlight=False, soft_wrap=True)
    if not result.rejected:
        return
    where = f", written to {result.rejected_output}" if result.rejected_output else ""
    console.print(
        f"[yellow]skipped {result.rejected:,} bad row(s)[/]{where}", highlight=False, soft_wrap=True
    )
    for problem in result.problems:
        note(f"  {problem.describe()}")


def _local(model: str, options: BatchOptions) -> BatchResult:
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from mlship.batch import job
    from mlship.scoring.predictor import Predictor

    predictor = Predictor.load(model)
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

        def tick(state: job.Tick) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = state.rows / elapsed if elapsed > 0 else 0.0
            bar.update(task, completed=state.done, total=state.total, rows=state.rows, rate=rate)

        return job.score(predictor, options, progress=tick)


def _spark(model: Path, options: BatchOptions, master: str | None) -> BatchResult:
    from mlship.batch import spark

    with console.status(f"starting Spark ({master or 'master from spark-submit'})") as status:
        session = spark.session(master, options.batch_rows)
        try:
            status.update(f"scoring {options.input_uri} with Spark")
            return spark.score(session, model, options)
        finally:
            session.stop()
