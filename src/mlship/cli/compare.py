"""``mlship compare``: algorithms side by side on one split and one set of CV folds."""

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
    OverridesArg,
    guarded,
    load_settings,
    out,
    progress,
)


def compare(
    overrides: OverridesArg = None,
    algorithms: Annotated[
        list[str] | None,
        typer.Option("--algorithm", "-a", help="Algorithm to include (repeat; default: all)."),
    ] = None,
    folds: Annotated[
        int | None,
        typer.Option("--folds", min=2, help="CV folds (default split.cv_folds, else 5)."),
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the table as Markdown.")
    ] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    env: EnvOpt = None,
    env_dir: EnvDirOpt = DEFAULT_ENV_DIR,
) -> None:
    """Train each algorithm on the same split and folds; one tracked run each, one table."""

    def body() -> None:
        settings = load_settings(config, env, overrides, env_dir)
        from mlship.registry.tracking import quiet_mlflow
        from mlship.training import compare as comparing

        quiet_mlflow()
        with progress("starting") as step:
            k = folds or settings.split.cv_folds or 5
            result = comparing.run(settings, algorithms, k, step)
        if markdown:
            out.print(comparing.markdown(result), markup=False, highlight=False, soft_wrap=True)
        else:
            table = Table(
                title=f"{len(result.rows)} algorithms: {result.rows_train:,} train / "
                f"{result.rows_test:,} holdout rows, {result.folds}-fold CV on train"
            )
            head = comparing.header(result.task)
            for i, name in enumerate(head):
                table.add_column(name, justify="left" if i == 0 else "right")
            for row in result.rows:
                table.add_row(*comparing.cells(row, result.task))
            out.print(table)
        out.print(f"parent run: {result.parent_run_id} (table in compare/table.md)")

    guarded(body)
