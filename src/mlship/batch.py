"""Batch scoring of a CSV or Parquet file, streamed in record batches through the predictor.

Memory is bounded by ``batch_rows``, not by the file. Output goes to a temp file beside the
destination and is renamed into place only when every batch succeeded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from mlship.data import infer_format
from mlship.errors import DataError, InputError
from mlship.predictor import Predictor, summarize


@dataclass(frozen=True)
class BatchResult:
    rows: int
    output: Path


def _batches(path: str, fmt: str, batch_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.dataset as ds

    try:
        source = ds.dataset(path, format="parquet" if fmt == "parquet" else "csv")
        for batch in source.to_batches(batch_size=batch_rows):
            yield batch.to_pandas()
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"--input {path!r}: cannot read it: {str(exc).splitlines()[0]}") from None


def output_frame(predictor: Predictor, frame: pd.DataFrame, id_column: str | None) -> pd.DataFrame:
    """Predictions (and ``proba_<class>`` columns) for one batch, keeping the id column first."""
    result = predictor.predict(frame)
    columns: dict[str, object] = {}
    if id_column:
        columns[id_column] = frame[id_column].to_numpy()
    columns["prediction"] = result.predictions
    if result.probabilities is not None:
        for i, label in enumerate(result.classes):
            columns[f"proba_{label}"] = result.probabilities[:, i]
    return pd.DataFrame(columns)


def score_file(
    predictor: Predictor,
    input_path: str,
    output_path: Path,
    *,
    batch_rows: int = 50_000,
    id_column: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> BatchResult:
    """Score ``input_path`` into ``output_path`` (CSV or Parquet by extension)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    in_fmt = infer_format(input_path)
    out_fmt = infer_format(str(output_path))
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(f".{output_path.name}.tmp-{uuid.uuid4().hex[:8]}")
    writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
    rows = 0
    try:
        for frame in _batches(input_path, in_fmt, batch_rows):
            if id_column and id_column not in frame.columns:
                raise DataError(f"--id-column {id_column!r} is not a column of the input")
            try:
                scored = output_frame(predictor, frame, id_column)
            except InputError as exc:
                shifted = [{**d, "row": d["row"] + rows} if "row" in d else d for d in exc.details]
                raise InputError(summarize(shifted), shifted) from None
            table = pa.Table.from_pandas(scored, preserve_index=False)
            if writer is None:
                writer = (
                    pq.ParquetWriter(tmp, table.schema)
                    if out_fmt == "parquet"
                    else pacsv.CSVWriter(tmp, table.schema)
                )
            writer.write_table(table)
            rows += len(frame)
            if progress:
                progress(len(frame))
        if writer is None:
            raise DataError(f"--input {input_path!r}: no rows")
        writer.close()
        writer = None
        tmp.replace(output_path)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return BatchResult(rows=rows, output=output_path)
