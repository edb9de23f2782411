"""Body shapes shared by the protocols, decoded straight into per-column numpy arrays.

Only the shape is checked here; the predictor checks columns, types and values. Every problem
is a typed ``Problem``: a bad row is named by its 0-based position.
"""

from __future__ import annotations

import csv
import io
import operator
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from mlship.scoring.columns import NA_TEXT, Columns, is_number_text
from mlship.scoring.predictor import ExtraColumns, Predictor
from mlship.scoring.problems import Code, InputError, Problem
from mlship.serving.codecs import cells

JSON_TYPES = ("application/json", "text/json", "*/*")
CSV_TYPES = ("text/csv", "application/csv")
JSON_LINES_TYPES = ("application/jsonlines", "application/x-jsonlines", "application/jsonl")


def media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";", 1)[0].strip().lower()


def is_json(kind: str) -> bool:
    return kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json"))


def malformed(message: str) -> InputError:
    return InputError.single(Code.malformed, message)


def no_rows() -> InputError:
    return InputError.single(Code.no_rows, "no rows to score")


def load_json(body: bytes) -> Any:
    if not body.strip():
        raise malformed("empty body; send a JSON array of records")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise malformed(f"malformed JSON: {json_problem(body, exc)}") from None


def json_problem(text: bytes, exc: orjson.JSONDecodeError) -> str:
    """orjson's complaint, or where the text stops being UTF-8: for that orjson names no
    byte ("surrogates not allowed ... char 0"). The offset is into ``text``: the decompressed
    body, or for JSON Lines the line."""
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not UTF-8 text (byte {bad.start})"
    return str(exc)


OnIgnored = Callable[[list[str]], None] | None


def rows(
    data: list[Any], predictor: Predictor, extra: ExtraColumns, on_ignored: OnIgnored = None
) -> Columns:
    """A JSON array of records (objects) or of arrays in signature order."""
    if not data:
        raise no_rows()
    if isinstance(data[0], dict):
        return records(data, predictor, extra, on_ignored)
    if isinstance(data[0], list):
        return arrays(data, predictor)
    raise malformed(f"row 0: expected an object (record) or an array, got {type(data[0]).__name__}")


def records(
    data: Sequence[Any], predictor: Predictor, extra: ExtraColumns, on_ignored: OnIgnored = None
) -> Columns:
    """Rows given as objects; a row missing a field or adding one is named by row."""
    names = predictor.column_names
    expected = set(names)
    problems: list[Problem] = []
    ignored: dict[str, None] = {}
    for i, record in enumerate(data):
        if not isinstance(record, dict):
            kind = type(record).__name__
            problems.append(Problem(Code.row_shape, f"expected an object, got {kind}", i))
        elif record.keys() != expected:
            problems += [
                Problem(Code.missing_column, "required field is missing", i, c)
                for c in names
                if c not in record
            ]
            unknown = predictor.unknown(map(str, record))
            if extra == "reject":
                problems += [Problem(Code.unknown_column, "unknown column", i, c) for c in unknown]
            ignored |= dict.fromkeys(unknown)
    if problems:
        raise InputError(problems)
    if ignored and on_ignored is not None:
        on_ignored(list(ignored))
    return _matrix(list(map(_row_getter(names), data)), names, predictor)


def arrays(data: Sequence[Any], predictor: Predictor) -> Columns:
    """Rows given as arrays in signature order."""
    names = predictor.column_names
    width = len(names)
    problems = [] if _all_lists_of(data, width) else [
        Problem(Code.row_shape, f"expected {width} values in signature order, got {_size(r)}", i)
        for i, r in enumerate(data)
        if not isinstance(r, list | tuple) or len(r) != width
    ]  # fmt: skip
    if problems:
        raise InputError(problems, f"array rows must have {width} values ({', '.join(names)})")
    return _matrix(data, names, predictor)


def split(
    payload: Any, predictor: Predictor, extra: ExtraColumns, on_ignored: OnIgnored = None
) -> Columns:
    """MLflow's ``{"columns": [...], "data": [[...], ...]}``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("columns"), list):
        raise malformed("dataframe_split needs 'columns' (array) and 'data' (array of arrays)")
    names, data = payload["columns"], payload.get("data")
    check_names(names, "dataframe_split.columns")
    if not isinstance(data, list):
        raise malformed("dataframe_split.data must be an array of arrays")
    if not data:
        raise no_rows()
    width = len(names)
    bad = [] if _all_lists_of(data, width) else [
        i for i, row in enumerate(data) if not isinstance(row, list) or len(row) != width
    ]  # fmt: skip
    if bad:
        problems = [Problem(Code.malformed, f"expected {width} values", i) for i in bad]
        raise InputError(problems, f"dataframe_split.data row {bad[0]}: expected {width} values")
    values = cells.column_arrays(names, cells.transpose(data, width), numeric_names(predictor))
    return predictor.select(names, values, extra, on_ignored)


def csv_table(
    body: bytes, predictor: Predictor, extra: ExtraColumns, on_ignored: OnIgnored = None
) -> Columns:
    """CSV with a header row, or without one (values in signature order, as SageMaker's
    ``CSVSerializer`` sends them); cells are typed as ``pandas.read_csv`` typed training data.

    The first line is a header when every cell names a column of the training table, or
    when some do and it cannot be a row of values in signature order (a number column holding
    text): a category that happens to spell a column name does not make a data row a header.
    """
    try:
        reader = csv.reader(io.StringIO(body.decode("utf-8-sig")), strict=True)
        data = [row for row in reader if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise malformed(f"malformed CSV: {exc}") from None
    if not data:
        raise malformed("empty CSV body; send rows, with or without a header row")
    first = [cell.strip() for cell in data[0]]
    if not _has_header(first, predictor):
        header, data, where = predictor.column_names, data, "CSV row"
    else:
        header, data, where = first, data[1:], "CSV row"
        check_names(header, "CSV header")
    if not data:
        raise no_rows()
    width = len(header)
    bad = [] if _all_lists_of(data, width) else [
        i for i, row in enumerate(data) if len(row) != width
    ]  # fmt: skip
    if bad:
        problems = [Problem(Code.malformed, f"expected {width} fields", i) for i in bad]
        got = len(data[bad[0]])
        raise InputError(problems, f"{where} {bad[0]}: expected {width} fields, got {got}")
    kinds = {c.name: c.kind for c in predictor.columns}
    values = {
        name: cells.csv_text(list(column), kinds.get(name, "categorical"))
        for name, column in zip(header, cells.transpose(data, width), strict=True)
    }
    return predictor.select(header, values, extra, on_ignored)


def _has_header(first: list[str], predictor: Predictor) -> bool:
    named = set(first) & (set(predictor.column_names) | predictor.unused)
    if not named or len(named) == len(first):
        return bool(named)
    if len(first) != len(predictor.column_names):
        return True
    return not all(
        cell in NA_TEXT or is_number_text(cell)
        for cell, column in zip(first, predictor.columns, strict=True)
        if column.kind == "numeric"
    )


def json_lines(
    body: bytes, predictor: Predictor, extra: ExtraColumns, on_ignored: OnIgnored = None
) -> Columns:
    """One JSON record (or array in signature order) per line."""
    lines = [line for line in body.splitlines() if line.strip()]
    data = []
    for i, line in enumerate(lines):
        try:
            data.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise malformed(f"JSON line {i}: {json_problem(line, exc)}") from None
    return rows(data, predictor, extra, on_ignored)


def check_names(names: list[Any], where: str) -> None:
    """Column names must be distinct strings: a repeated name would silently drop a column."""
    odd = [n for n in names if not isinstance(n, str)]
    if odd:
        raise malformed(f"{where}: column names must be strings, got {odd[0]!r}")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError.single(Code.duplicate_column, f"{where}: duplicate column {name!r}")
        seen.add(name)


def _all_lists_of(data: Sequence[Any], width: int) -> bool:
    """Every row a list of ``width`` cells, checked at C speed (the rows are then not listed)."""
    return set(map(type, data)) <= {list} and set(map(len, data)) <= {width}


def numeric_names(predictor: Predictor) -> frozenset[str]:
    return frozenset(c.name for c in predictor.columns if c.kind == "numeric")


def _matrix(data: Sequence[Sequence[Any]], names: list[str], predictor: Predictor) -> Columns:
    """Equal-length rows in signature order -> one array per column (float64 where every
    cell of a numeric column is a number, objects otherwise)."""
    columns = cells.transpose(data, len(names))
    return cells.column_arrays(names, columns, numeric_names(predictor))


def _row_getter(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A C-speed ``record -> tuple of values in signature order``."""
    if len(names) == 1:
        only = names[0]
        return lambda record: (record[only],)
    return operator.itemgetter(*names)


def _size(row: Any) -> str:
    return str(len(row)) if isinstance(row, list | tuple) else type(row).__name__
