"""The local batch job: stream input, score each batch, write output all or nothing.

Every bad row is located in its file (row from 0, CSV line when known). ``fail`` stops at the
first batch holding one and leaves no output; ``skip`` writes the good rows and reports the
bad ones, also to a rejected-rows file when asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from mlship.batch.frames import Scored, from_text, score_frame
from mlship.batch.options import BatchOptions
from mlship.batch.reader import Chunk, Malformed, list_input, progress_total, read_chunks
from mlship.batch.report import BadRowsError, BatchResult, Located, record_json
from mlship.batch.writer import Staged
from mlship.errors import DataError
from mlship.scoring.predictor import Predictor
from mlship.scoring.problems import InputError, Problem
from mlship.scoring.results import result_fields

REJECTED_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("row", pa.int64()),
        ("line", pa.int64()),
        ("error", pa.string()),
        ("record", pa.string()),
    ]
)
ARROW_TYPES = {"string": pa.string(), "double": pa.float64()}


@dataclass(frozen=True)
class Tick:
    """Progress after a batch: rows read so far, and ``done`` of ``total`` units."""

    rows: int
    done: int
    total: int | None


def output_schema(predictor: Predictor, id_field: pa.Field | None = None) -> pa.Schema:
    """The id column (if any), then the shared result columns."""
    fields = [id_field] if id_field is not None else []
    kinds = result_fields(predictor.info.classes, predictor.is_classifier)
    return pa.schema(fields + [pa.field(name, ARROW_TYPES[kind]) for name, kind in kinds])


def locate(chunk: Chunk, position: int, problem: Problem) -> Located:
    """A batch-relative problem, placed in its file (CSV line when it is known)."""
    row = chunk.start + position
    line = row + 2 if chunk.text and chunk.lines_known else None
    return Located(chunk.file.uri, problem.message, row, line, problem.column, problem.code)


class _Job:
    """One run of ``score``: the staged outputs and the running result."""

    def __init__(self, predictor: Predictor, options: BatchOptions) -> None:
        self.predictor = predictor
        self.options = options
        self.result = BatchResult(output=options.output_uri, rejected_output=options.rejected_uri)
        storage = options.storage_options
        self.out = Staged(options.output_uri, storage)
        self.rejected = Staged(options.rejected_uri, storage) if options.rejected_uri else None
        self.schema: pa.Schema | None = None

    def batch(self, chunk: Chunk) -> None:
        id_column = self.options.id_column
        frame = chunk.table.to_pandas()
        if self.schema is None:
            id_field = chunk.table.schema.field(id_column) if id_column else None
            self.schema = output_schema(self.predictor, id_field)
        features = from_text(frame, self.predictor) if chunk.text else frame
        ids = frame[id_column].to_numpy() if id_column else None
        try:
            scored = score_frame(
                self.predictor, features, ids, id_column, skip=self.options.on_error == "skip"
            )
        except InputError as exc:
            raise _located_error(exc, chunk) from None
        if len(scored.output):
            table = pa.Table.from_pandas(scored.output, schema=self.schema, preserve_index=False)
            self.out.write(table)
        self._take_bad(scored, chunk, frame)
        self.result.rows += len(frame)
        self.result.scored += len(scored.good)

    def _take_bad(self, scored: Scored, chunk: Chunk, frame: pd.DataFrame) -> None:
        if not scored.bad:
            return
        located = [locate(chunk, pos, problem) for pos, problem in scored.bad.items()]
        self.result.note(located)
        if self.rejected is None:
            return
        needed = self.options.needed_columns(self.predictor.column_names)
        raw = frame[needed].iloc[list(scored.bad)].to_dict("records")
        rows = [
            {
                "file": p.file,
                "row": p.row,
                "line": p.line,
                "error": p.error_text(),
                "record": record_json(values),
            }
            for p, values in zip(located, raw, strict=True)
        ]
        self.rejected.write(pa.Table.from_pylist(rows, schema=REJECTED_SCHEMA))

    def malformed(self, lines: list[Malformed]) -> None:
        if not lines:
            return
        first = lines[0]
        if self.options.on_error == "fail":
            raise DataError(f"{first.file.uri}: malformed line ({first.error}): {first.text!r}")
        located = [Located(m.file.uri, f"malformed line ({m.error})") for m in lines]
        self.result.note(located)
        if self.rejected is not None:
            rows = [
                {"file": m.file.uri, "row": None, "line": None, "error": p.error, "record": m.text}
                for m, p in zip(lines, located, strict=True)
            ]
            self.rejected.write(pa.Table.from_pylist(rows, schema=REJECTED_SCHEMA))
        lines.clear()

    def commit(self) -> None:
        id_column = self.options.id_column
        empty_id = pa.field(id_column, pa.string()) if id_column else None
        self.out.commit(self.schema or output_schema(self.predictor, empty_id))
        if self.rejected is not None:
            self.rejected.commit(REJECTED_SCHEMA)

    def discard(self) -> None:
        self.out.discard()
        if self.rejected is not None:
            self.rejected.discard()


def score(
    predictor: Predictor, options: BatchOptions, progress: Callable[[Tick], None] | None = None
) -> BatchResult:
    """Score ``options.input_uri`` into ``options.output_uri`` (Parquet, or CSV by extension)."""
    source = list_input(options.input_uri, options.storage_options)
    needed = options.needed_columns(predictor.column_names)
    total = progress_total(source)
    job = _Job(predictor, options)
    malformed: list[Malformed] = []
    try:
        for chunk in read_chunks(source, needed, options.batch_rows, malformed):
            job.malformed(malformed)
            job.batch(chunk)
            if progress:
                progress(Tick(job.result.rows, chunk.done, total))
        job.malformed(malformed)
        job.commit()
    except BaseException:
        job.discard()
        raise
    return job.result


def _located_error(exc: InputError, chunk: Chunk) -> InputError:
    if any(p.row is None for p in exc.problems):
        return InputError(exc.problems, f"{chunk.file.uri}: {exc.message}")
    located = [locate(chunk, p.row or 0, p) for p in exc.problems]
    return BadRowsError(located, len(located))
