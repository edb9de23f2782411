"""Apache Arrow IPC streams in and out (``application/vnd.apache.arrow.stream``).

For clients that move large batches: a record batch stream of the feature columns decodes to
numpy columns with no Python step per cell (a float column without nulls is a view of the
body), and the reply is one record batch of the batch output schema (``prediction``, then
``proba_<class>`` per class; ``mlship.scoring.results``) with the model's identity in the
schema metadata.

Types are checked against the signature per column: a number column takes integers, floating
point, decimals or all-null; a category column takes strings (plain, large, dictionary
encoded), integers or booleans, as their text. Anything else is a 422 naming the column.
Values are then validated cell by cell like any other body (nulls where training had none,
out-of-range numbers), each problem by row and column.

pyarrow is not a serving dependency (the scoring images leave it out): without it an Arrow body is
a 415 and an Arrow reply a 406, each saying so, and ``available()`` tells the OpenAPI
document and ``/metadata`` whether this server speaks Arrow. pyarrow is imported on the first
Arrow request, never at start-up.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlship.scoring.columns import Columns
from mlship.scoring.predictor import ExtraColumns, Predictor
from mlship.scoring.problems import Code, InputError, Problem
from mlship.scoring.results import Prediction, result_fields
from mlship.serving.codecs import tabular

MEDIA_TYPE = "application/vnd.apache.arrow.stream"
MEDIA_TYPES = (MEDIA_TYPE, "application/vnd.apache.arrow")
WITHOUT = (
    "this server has no pyarrow (the scoring images leave it out; outside them the 'batch' "
    "extra installs it); send JSON or CSV"
)


@functools.cache
def available() -> bool:
    """Whether pyarrow can be imported here (looked up, not imported: start-up stays lean)."""
    try:
        return importlib.util.find_spec("pyarrow") is not None
    except (ImportError, ValueError):
        return False


def _pyarrow(code: Code) -> Any:
    try:
        import pyarrow as pa
        import pyarrow.ipc  # the submodule the calls below use
    except ImportError:
        what = "Arrow bodies" if code is Code.unsupported_media_type else "Arrow replies"
        raise InputError.single(code, f"{what}: {WITHOUT}") from None
    return pa


def decode(
    body: bytes, predictor: Predictor, extra: ExtraColumns, on_ignored: tabular.OnIgnored = None
) -> Columns:
    """A record batch stream as raw columns, each typed against the signature."""
    pa = _pyarrow(Code.unsupported_media_type)
    if not body:
        raise tabular.malformed("empty body; send an Arrow IPC stream of the feature columns")
    try:
        table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise tabular.malformed(f"malformed Arrow IPC stream: {str(exc)[:200]}") from None
    names = list(table.column_names)
    tabular.check_names(names, "Arrow schema")
    if table.num_rows == 0:
        raise tabular.no_rows()
    kinds = {c.name: c.kind for c in predictor.columns}
    values: Columns = {}
    problems: list[Problem] = []
    # pyarrow wraps every object it hands out (~1-2 us each): columns and types are read in
    # one call each, and a column of one chunk (a stream of one batch) is not combined.
    for name, chunked in zip(names, table.columns, strict=True):
        kind = kinds.get(name)
        if kind is None:  # not the model's: select rejects or ignores it by name
            continue
        column = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
        converted = _numbers(pa, column) if kind == "numeric" else _categories(pa, column)
        if isinstance(converted, Problem):
            problems.append(Problem(converted.code, converted.message, column=name))
        else:
            values[name] = converted
    if problems:
        raise InputError(problems)
    return predictor.select(names, values, extra, on_ignored)


def _numbers(pa: Any, column: Any) -> np.ndarray | Problem:
    kind = column.type
    if kind.id not in _plain_numbers(pa):  # the type predicates only off the common case
        if pa.types.is_decimal(kind):
            column = column.cast(pa.float64())
        elif not (
            pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)
        ):
            return Problem(
                Code.not_a_number,
                f"expected a number column (integer or floating point), got Arrow type {kind}",
            )
    out: np.ndarray = column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return out


@functools.cache
def _plain_numbers(pa: Any) -> frozenset[int]:
    """Type ids of the integer and floating point types (``to_numpy`` then float64)."""
    kinds = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16()]
    kinds += [pa.uint32(), pa.uint64(), pa.float16(), pa.float32(), pa.float64()]
    return frozenset(k.id for k in kinds)


def _categories(pa: Any, column: Any) -> np.ndarray | Problem:
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.dictionary_decode(), kind.value_type
    if pa.types.is_integer(kind):  # as their text, written by Arrow (str(int)'s digits)
        column, kind = column.cast(pa.string()), pa.string()
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    if text or pa.types.is_boolean(kind) or pa.types.is_null(kind):
        out: np.ndarray = column.to_numpy(zero_copy_only=False)
        return out if out.dtype.kind == "O" else _as_objects(out)
    return Problem(
        Code.not_a_category,
        f"expected a string column (or integers), got Arrow type {kind}",
    )


def _as_objects(values: np.ndarray) -> np.ndarray:
    """Booleans (nulls: NaN) as Python objects, which ``to_categorical`` spells."""
    out = np.empty(len(values), dtype=object)
    out[:] = values.tolist()
    return out


def encode(result: Prediction, predictor: Predictor) -> bytes:
    """One record batch: ``prediction`` then ``proba_<class>``; the model in the metadata.

    The stream is written as its three parts: the schema message (the same for every reply of
    this model, so serialized once), the batch, and the end-of-stream marker. Labels the
    predictor chose by index are taken from the classes in Arrow, not read string by string.
    """
    pa = _pyarrow(Code.not_acceptable)
    info = predictor.info
    reply = _reply_schema(pa, tuple(result.classes), predictor.is_classifier,
                          str(info.name), str(info.version), str(info.run_id))  # fmt: skip
    if result.indices is not None:
        labels = reply.labels.take(pa.array(result.indices))
    else:
        labels = pa.array(result.predictions, reply.schema.field(0).type)
    arrays = [labels]
    if result.probabilities is not None:  # one contiguous row per class: no strided copies
        arrays += [pa.array(p) for p in np.ascontiguousarray(result.probabilities.T)]
    batch = pa.RecordBatch.from_arrays(arrays, schema=reply.schema)
    return b"".join((reply.head, batch.serialize().to_pybytes(), END_OF_STREAM))


# An IPC stream ends with a continuation marker and a zero length (the Arrow columnar format).
END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"


@dataclass(frozen=True)
class _Reply:
    schema: Any
    head: bytes  # the schema message, as it opens every reply stream
    labels: Any  # the classes as an Arrow string array, to take labels from


@functools.lru_cache(maxsize=8)
def _reply_schema(
    pa: Any, classes: tuple[str, ...], is_classifier: bool, name: str, version: str, run_id: str
) -> _Reply:
    """The reply schema of one model (``result_fields``), with its identity as metadata."""
    kinds = {"string": pa.string(), "double": pa.float64()}
    fields = [pa.field(n, kinds[k]) for n, k in result_fields(list(classes), is_classifier)]
    metadata = {"model_name": name, "model_version": version, "run_id": run_id}
    schema = pa.schema(fields, metadata=metadata)
    head: bytes = schema.serialize().to_pybytes()
    return _Reply(schema, head, pa.array(list(classes), pa.string()))
