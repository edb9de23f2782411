"""``mlship explain``: per-row SHAP contributions of each raw feature, for a file of rows.

Rows are read and validated exactly as ``mlship predict`` reads them (CSV as text, typed as
training typed it; every bad cell named by file, line and column), scored with the fitted
scikit-learn pipeline, and explained by ``mlship.training.explain``. The output holds the
predict columns (``prediction``, ``proba_<class>``), ``base_value`` and one ``shap_<feature>``
per raw feature; for a multiclass model ``base_value__<class>`` and ``shap_<feature>__<class>``
per class. It needs shap, which only the training environment has (the train extra).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlship.cli.common import (
    DEFAULT_CONFIG,
    DEFAULT_ENV_DIR,
    ConfigOpt,
    EnvDirOpt,
    EnvOpt,
    guarded,
    note,
    out,
    progress,
    registry_uri_for,
)
from mlship.errors import MlshipError

if TYPE_CHECKING:
    import pandas as pd

    from mlship.batch.reader import Chunk
    from mlship.scoring.predictor import Predictor

BACKGROUND_ROWS = 1000  # rows of the input kept as the linear/agnostic explainers' background


@dataclass
class _Run:
    """One explain job: the model, its background rows, the staged output, rows written."""

    predictor: Predictor
    output: Any
    id_column: str | None
    background: pd.DataFrame | None = None
    rows: int = 0
    explainer: str = ""
    scale: str = ""


def explain(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model dir, or models:/name@alias, models:/name/N.")
    ],
    input_uri: Annotated[
        str, typer.Option("--input", "-i", help="CSV or Parquet: a file, directory or glob.")
    ],
    output: Annotated[
        str,
        typer.Option("--output", "-o", help="Parquet, or CSV by extension; written on success."),
    ],
    batch_rows: Annotated[int, typer.Option(min=1, help="Rows explained per batch.")] = 10_000,
    id_column: Annotated[
        str | None, typer.Option(help="Input column copied to the output to join on.")
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="For models:/...; default: from config.")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    env: EnvOpt = None,
    env_dir: EnvDirOpt = DEFAULT_ENV_DIR,
) -> None:
    """Per-row SHAP contributions of each feature to the model's output (training env only).

    Per row, base_value + the shap_* columns = the output (binary: toward the positive class).
    """

    def body() -> None:
        _require_training_environment()
        from mlship.batch.options import BatchOptions

        options = BatchOptions(input_uri, output, batch_rows, id_column)
        uri = registry_uri_for(model, tracking_uri, config, env, env_dir)
        from mlship.storage import owned_prefix

        with (
            tempfile.TemporaryDirectory(prefix=owned_prefix("mlship-explain")) as work,
            progress("starting") as step,
        ):
            predictor = _load(model, uri, Path(work), step)
            job = _explain_file(predictor, options, step)
        out.print(f"explained {job.rows:,} rows -> {output}", highlight=False, soft_wrap=True)
        note(f"explainer: {job.explainer}; contributions in {job.scale}")

    guarded(body)


def _require_training_environment() -> None:
    """shap and the batch reader are the train extra's; a serving install says so in a line."""
    try:
        import fsspec  # noqa: F401
        import pyarrow  # noqa: F401
        import shap  # type: ignore[import-untyped]  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise MlshipError(
            "mlship explain runs in the training environment: install the train extra "
            f"(pip install 'mlship[train]'); {exc.name or exc} is not installed"
        ) from None


def _load(source: str, uri: str, work: Path, step: Any) -> Predictor:
    from mlship.registry.models import local_model
    from mlship.scoring.predictor import Predictor

    # the pipeline itself is explained
    return Predictor.load(local_model(source, uri, work, step), runtime="sklearn")


def _explain_file(predictor: Predictor, options: Any, step: Any) -> _Run:
    from mlship.batch.reader import list_input, progress_total, read_chunks
    from mlship.batch.writer import Staged

    source = list_input(options.input_uri, options.storage_options)
    needed = options.needed_columns(predictor.column_names)
    total = progress_total(source)
    job = _Run(predictor, Staged(options.output_uri, options.storage_options), options.id_column)
    malformed: list[Any] = []
    job.background = _background(predictor, read_chunks(source, needed, BACKGROUND_ROWS, []))
    try:
        for chunk in read_chunks(source, needed, options.batch_rows, malformed):
            _refuse_malformed(malformed)
            _batch(job, chunk)
            done = f" ({chunk.done / total:.0%})" if total else ""
            step(f"explained {job.rows:,} rows{done}")
        _refuse_malformed(malformed)
        if job.rows == 0:
            raise MlshipError(f"input {options.input_uri!r}: no rows to explain")
        job.output.commit(None)
    except BaseException:
        job.output.discard()
        raise
    return job


def _refuse_malformed(lines: list[Any]) -> None:
    from mlship.errors import DataError

    if lines:
        first = lines[0]
        raise DataError(f"{first.file.uri}: malformed line ({first.error}): {first.text!r}")


def _background(predictor: Predictor, chunks: Any) -> pd.DataFrame | None:
    """The file's first ``BACKGROUND_ROWS`` rows when they are all valid (else None: the
    first batch's own rows, and the batch reports what is wrong with them). Read apart from
    the batches, so ``--batch-rows`` changes no number."""
    first = next(iter(chunks), None)
    if first is None:
        return None
    checked = _checked(predictor, first)
    if not checked.ok:
        return None
    import pandas as pd

    return pd.DataFrame(checked.columns, columns=predictor.column_names)


def _checked(predictor: Predictor, chunk: Chunk) -> Any:
    from mlship.batch.frames import from_text
    from mlship.scoring.columns import frame_columns

    frame = chunk.table.to_pandas()
    features = from_text(frame, predictor) if chunk.text else frame
    names, values = frame_columns(features, predictor.column_names)
    return predictor.validate(predictor.select(names, values, extra="ignore"))


def _batch(job: _Run, chunk: Chunk) -> None:
    """Validate a chunk as ``mlship predict`` does, then explain and write its rows."""
    import pandas as pd
    import pyarrow as pa

    from mlship.batch.job import locate
    from mlship.batch.report import BadRowsError
    from mlship.training.explain import explain_rows

    predictor = job.predictor
    checked = _checked(predictor, chunk)
    scored = predictor.score(checked)
    problems = scored.problems
    if problems or scored.prediction is None:
        located = [locate(chunk, p.row or 0, p) for p in problems]
        raise BadRowsError(located, len(located))
    rows = pd.DataFrame(checked.columns, columns=predictor.column_names)
    if job.background is None:
        job.background = rows.head(BACKGROUND_ROWS)
    info = predictor.info
    classes = list(info.classes) if predictor.is_classifier else []
    estimator = predictor.backend.estimator  # type: ignore[attr-defined]
    explained = explain_rows(estimator, rows, job.background, classes, info.positive_class)
    job.explainer, job.scale = explained.explainer, explained.scale
    table: dict[str, Any] = {}
    if job.id_column:
        table[job.id_column] = chunk.table.column(job.id_column).to_numpy(zero_copy_only=False)
    table |= scored.prediction.columns()
    several = len(explained.outputs) > 1
    for k, label in enumerate(explained.outputs):
        suffix = f"__{label}" if several else ""
        table[f"base_value{suffix}"] = explained.base[:, k]
        for j, feature in enumerate(explained.features):
            table[f"shap_{feature}{suffix}"] = explained.values[:, j, k]
    job.output.write(pa.Table.from_pandas(pd.DataFrame(table), preserve_index=False))
    job.rows += len(rows)
