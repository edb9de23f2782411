"""Column coercion shared by training and scoring, so both see features the same way.

Numeric features become float64: a missing value is NaN, which the imputer fills (never an
integer-column rejection). Categorical features become Python strings, and a missing category
is the empty string: ONNX string tensors cannot hold NaN, and using one marker everywhere
keeps the scikit-learn and ONNX runtimes identical. An integral number given for a categorical
column (``7`` or ``7.0``) becomes ``"7"``, as the category was spelled when the model was
trained from a CSV of integers.

These functions work on numpy arrays so the scoring hot path needs no pandas.
"""

from __future__ import annotations

import math
import re
import reprlib
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

Columns = dict[str, np.ndarray]
MISSING_CATEGORY = ""
# Every runtime must accept the same numbers. Random forest and XGBoost compare inputs rounded
# to float32, and twins compiled before 0.2 compute in float32, where larger values overflow to
# inf and poison the probabilities, so validation rejects them for everyone.
FLOAT32_MAX = float(np.finfo(np.float32).max)
_UNREPRESENTABLE = (dict, list, tuple, set)
# What pandas.read_csv reads as missing by default: CSV text means what it meant in training.
# fmt: off
NA_TEXT = frozenset((
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
))
# fmt: on
BOOL_TEXT = {"True": "True", "TRUE": "True", "true": "True"} | {
    "False": "False",
    "FALSE": "False",
    "false": "False",
}


def category_text(value: Any) -> str | None:
    """One categorical value as the model saw it in training; None if it cannot be one."""
    if isinstance(value, str):
        return value
    if value is None:
        return MISSING_CATEGORY
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return MISSING_CATEGORY
        return str(int(value)) if float(value).is_integer() else str(float(value))
    if isinstance(value, _UNREPRESENTABLE):
        return None
    return str(value)


def to_categorical(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strings (object array) and a mask of cells that cannot be a category (lists, objects)."""
    cells = values.tolist()
    bad = np.zeros(len(values), dtype=bool)
    if _all_text(cells):  # the common case, at C speed
        return np.asarray(values, dtype=object), bad
    kinds = set(map(type, cells))
    if kinds <= _TEXT_OR_NONE:  # text with missing cells (a CSV, a JSON null)
        out = np.empty(len(cells), dtype=object)
        out[:] = [MISSING_CATEGORY if cell is None else cell for cell in cells]
        return out, bad
    if kinds <= {int}:  # each distinct number spelled once (bool is not int here)
        spelled = {number: str(number) for number in set(cells)}
        out = np.empty(len(cells), dtype=object)
        out[:] = list(map(spelled.__getitem__, cells))
        return out, bad
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(cells):
        text = category_text(value)
        if text is None:
            bad[i] = True
            text = MISSING_CATEGORY
        out[i] = text
    return out, bad


def _all_text(cells: list[Any]) -> bool:
    """Whether every cell is text: ``str.join`` takes nothing else and checks it in C, 5x
    faster than collecting the cells' types. A ``str`` subclass (``numpy.str_``) passes and is
    handed on as it is: onnxruntime, the drift counts and the logs read the same text."""
    try:
        "".join(cells)
    except TypeError:
        return False
    return True


# The one text form of a number we accept: ASCII digits, an optional sign, point and exponent.
# Python's float() also takes "1_000", " 0.9 ", Arabic-Indic and full-width digits, and would
# so score what no training CSV contained; a data contract says no to those.
NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_REAL = (int, float, np.integer, np.floating)
# A whole column of number text is checked at once: only these bytes (and \x1f, joining the
# cells), then ``float`` per cell. Within this alphabet ``float`` accepts exactly the strings
# NUMBER_TEXT matches (no spaces, "_", "inf", "nan" or non-ASCII digits can appear).
_SEPARATOR = "\x1f"
_NUMBER_BYTES = b"0123456789+-.eE" + _SEPARATOR.encode()
_TEXT_OR_NONE = frozenset({str, type(None)})
# Cells numpy converts to float64 exactly as ``_number`` does (None is missing: NaN).
REAL_OR_NONE = frozenset({int, float, type(None)})


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxdict = 2, 40, 40, 4, 4


def shown(value: Any) -> str:
    """A short repr of a cell for an error message, safe for values nested any depth."""
    if isinstance(value, bool | np.bool_):
        return f"{bool(value)!r} (a boolean)"
    return _SHOWN.repr(value)


def is_number_text(text: str) -> bool:
    return NUMBER_TEXT.fullmatch(text) is not None


def _number(value: Any) -> float | None:
    """A float for one cell; NaN for missing; None when it is present but not a number.

    Numbers are numbers (booleans are not); text must be a plain decimal literal; the empty
    string is missing, as an empty CSV cell is.
    """
    if value is None:
        return math.nan
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, _REAL):
        return float(value)
    if isinstance(value, str):
        if not value:
            return math.nan
        return float(value) if is_number_text(value) else None
    return None


def real_numbers_only(values: np.ndarray) -> bool:
    """Every cell an int, a float or None (no bool, text or container): safe to convert in one
    step, None becoming NaN (missing) as ``_number`` makes it."""
    if values.dtype.kind in "fiu":
        return True
    if values.dtype.kind != "O":
        return False
    return set(map(type, values.tolist())) <= REAL_OR_NONE


def to_numeric(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 values and a mask of cells that are present but not numbers.

    Missing cells (None, NaN, empty string) become NaN and are not flagged here; whether a
    column may be missing is the predictor's decision. Booleans, dates and durations are not
    numbers.
    """
    if values.dtype.kind in "bMm":
        return np.full(len(values), math.nan), np.ones(len(values), dtype=bool)
    if real_numbers_only(values):
        return values.astype(np.float64), np.zeros(len(values), dtype=bool)
    fast = _number_text(values.tolist())
    if fast is not None:
        return fast, np.zeros(len(values), dtype=bool)
    out = np.empty(len(values), dtype=np.float64)
    bad = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values.tolist()):
        number = _number(value)
        if number is None:
            bad[i] = True
            number = math.nan
        out[i] = number
    return out, bad


def _number_text(cells: list[Any]) -> np.ndarray | None:
    """A column of plain decimal text, empty strings and None as float64 (missing: NaN), read
    as ``_number`` reads each cell; None when any cell is anything else (look cell by cell)."""
    if not cells or not set(map(type, cells)) <= _TEXT_OR_NONE:
        return None
    texts = ["" if cell is None else cell for cell in cells]
    joined = _SEPARATOR.join(texts)
    if not joined.isascii() or joined.encode().translate(None, _NUMBER_BYTES):
        return None
    if not all(texts):
        texts = [cell or "nan" for cell in texts]  # empty: missing
    try:  # "1.2.3", "e5", "+" and a cell holding the separator fail here
        return np.fromiter(map(float, texts), dtype=np.float64, count=len(texts))
    except ValueError:
        return None


def text_cells(values: np.ndarray, kind: str) -> np.ndarray:
    """CSV text cells typed as ``pandas.read_csv`` typed the training data, cell by cell.

    Missing markers become None. Numeric cells stay text for ``to_numeric`` (which reports the
    ones that are not numbers). Categorical cells that are numbers take training's spelling
    (``"7.0"`` -> ``"7"``) and booleans pandas' (``"true"`` -> ``"True"``). The HTTP service's
    CSV bodies and batch CSV files both come through here.
    """
    out = np.empty(len(values), dtype=object)
    for i, cell in enumerate(values.tolist()):
        if cell is None or (isinstance(cell, str) and cell in NA_TEXT):
            out[i] = None
        elif kind == "numeric" or not isinstance(cell, str):
            out[i] = cell
        elif is_number_text(cell):
            number = float(cell)
            out[i] = category_text(number) if math.isfinite(number) else cell
        else:
            out[i] = BOOL_TEXT.get(cell, cell)
    return out


def column_values(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A DataFrame column as numpy: numpy numeric dtypes as they are, anything else (nullable
    extension dtypes included) as objects with every missing marker (``pd.NA``, ``NaT``) None."""
    series = frame[name]
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "fiub":
        return series.to_numpy()
    values: np.ndarray = series.astype(object).where(series.notna(), None).to_numpy()
    return values


def coerce_features(  # training's side of the same rules
    frame: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> pd.DataFrame:
    """Select the feature columns in model order and coerce each to its role's dtype."""
    import pandas as pd

    columns: dict[str, np.ndarray] = {}
    for name in numeric:
        columns[name] = to_numeric(column_values(frame, name))[0]
    for name in categorical:
        columns[name] = to_categorical(column_values(frame, name))[0]
    return pd.DataFrame(columns, index=frame.index)


def frame_columns(frame: pd.DataFrame, wanted: list[str]) -> tuple[list[str], Columns]:
    """A DataFrame's column names, and the ``wanted`` ones that it has, as numpy arrays."""
    names = [str(c) for c in frame.columns]
    present = set(names)
    return names, {c: column_values(frame, c) for c in wanted if c in present}
