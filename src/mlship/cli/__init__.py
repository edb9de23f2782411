"""The ``mlship`` command line: one module per command group, assembled here.

Commands import their heavy modules (MLflow, scikit-learn) inside the function body so
``mlship --help`` answers instantly. Errors of ours print as one line and exit 1; ``--debug``
shows the traceback. Nothing imports this package: it is the top layer.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mlship import __version__
from mlship.cli import (
    bundle,
    compare,
    config,
    evaluate,
    explain,
    image,
    monitor,
    predict,
    registry,
    serve,
    train,
    tune,
)
from mlship.cli.common import state

app = typer.Typer(
    help="Train tabular models from config, track them in MLflow, and serve them fast.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(train.train)
app.command()(tune.tune)
app.command()(compare.compare)
app.command()(evaluate.evaluate)
app.command()(explain.explain)
app.command()(monitor.monitor)
app.command()(predict.predict)
app.command()(registry.promote)
app.command()(serve.serve)
app.add_typer(image.app, name="image")
app.add_typer(config.app, name="config")
app.command()(bundle.bundle)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlship {__version__}")
        raise typer.Exit


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """mlship: notebook model to production."""
    del version
    state["debug"] = debug
