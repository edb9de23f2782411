"""Cells to numpy columns without a Python step per cell, where the cells allow it.

A 1,000-row body holds ~17,000 cells; a Python loop over them costs milliseconds, which is
most of a request (docs/benchmarks.md). Each helper here checks a whole column at C speed
(``set(map(type, ...))``) and converts it in one numpy call when every cell is what it looks
like; otherwise it hands the cells on as objects, and the predictor's per-cell path finds and
names each bad one (row and column), exactly as before. So the fast path changes speed, never
an answer or an error. (Number *text*, as CSV brings it, is read a column at a time by
``mlship.scoring.columns.to_numeric``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlship.scoring.columns import Columns, text_cells

_REAL = frozenset({int, float})
SMALL = 64  # cells


def numbers(cells: Sequence[Any]) -> np.ndarray | None:
    """float64 when every cell is an int or a float; else None (objects, for validation).

    Booleans are ``bool``, not ``int``, here, so they stay out (they are not numbers). A
    column with nulls stays objects too (None is what the codecs have always handed on for
    a missing cell); validation still converts it in one step (``real_numbers_only``).
    """
    if not set(map(type, cells)) <= _REAL:
        return None
    if len(cells) < SMALL:  # np.array's fixed cost is lower; np.fromiter's per-cell cost is
        return np.array(cells, dtype=np.float64)
    return np.fromiter(cells, dtype=np.float64, count=len(cells))


def objects(cells: Sequence[Any]) -> np.ndarray:
    """A 1-D object array of ``cells`` (a cell that is itself a list stays one cell)."""
    out = np.empty(len(cells), dtype=object)
    out[:] = cells
    return out


def column_arrays(
    names: Sequence[str], cells: Sequence[Sequence[Any]], numeric: frozenset[str]
) -> Columns:
    """One array per named column of ``cells``: float64 where ``numbers`` can, else objects."""
    out: Columns = {}
    for name, column in zip(names, cells, strict=True):
        fast = numbers(column) if name in numeric else None
        out[name] = fast if fast is not None else objects(column)
    return out


def transpose(rows: Sequence[Sequence[Any]], width: int) -> list[tuple[Any, ...]]:
    """Equal-width rows (the callers checked) as one tuple per column, at C speed (``zip``)."""
    if not rows:
        return [() for _ in range(width)]
    return list(zip(*rows, strict=False))


def csv_text(cells: list[str], kind: str) -> np.ndarray:
    """CSV cells typed as ``text_cells`` types them, once per distinct value.

    Columns repeat their values (categories, prices), so typing each distinct cell once and
    mapping the column through a dict is the same answer for a fraction of the work.
    """
    distinct = list(dict.fromkeys(cells))
    spelled = dict(zip(distinct, text_cells(objects(distinct), kind).tolist(), strict=True))
    return objects(list(map(spelled.__getitem__, cells)))


def probability_records(probabilities: np.ndarray | None, classes: list[str]) -> Any:
    """``[{class: p, ...}, ...]``, one per row (the records reply), or None for a regressor.

    The binary case (most models) builds each dict from a literal, 3x faster than
    ``dict(zip(...))`` per row (0.25 ms against 0.73 ms for 1,000 rows, orjson included).
    """
    if probabilities is None:
        return None
    rows = probabilities.tolist()
    if len(classes) == 2:
        first, second = classes
        return [{first: a, second: b} for a, b in rows]
    return [dict(zip(classes, row, strict=True)) for row in rows]
