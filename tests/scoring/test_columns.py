"""Column coercion shared by training and scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlship.scoring.columns import category_text, text_cells, to_categorical, to_numeric


def objects(*values: object) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


@pytest.mark.parametrize(
    ("value", "text"),
    [("A", "A"), (7, "7"), (7.0, "7"), (7.5, "7.5"), (None, ""), (math.nan, ""), (True, "True")],
)
def test_category_text(value: object, text: str) -> None:
    assert category_text(value) == text


def test_categories_reject_containers() -> None:
    text, bad = to_categorical(objects("a", [1], {"k": 1}, 3))
    assert bad.tolist() == [False, True, True, False]
    assert text.tolist() == ["a", "", "", "3"]


@pytest.mark.parametrize(
    "cells",
    [
        objects("a", "b", "a"),
        objects(np.str_("a"), "b"),  # a str subclass is text
        objects(1, 7, 1, -3),  # integers: each distinct one spelled once
        objects("a", None, "b"),
        objects(1, True, 1.0, 2),  # equal as numbers, not as categories
    ],
)
def test_every_path_spells_a_cell_as_category_text(cells: np.ndarray) -> None:
    text, bad = to_categorical(cells)
    assert not bad.any()
    assert text.tolist() == [category_text(c) for c in cells.tolist()]
    assert all(isinstance(t, str) for t in text.tolist())


def test_numbers_missing_and_bad() -> None:
    values, bad = to_numeric(objects(1, "2.5", None, "", "x", [1]))
    assert bad.tolist() == [False, False, False, False, True, True]
    assert values[:2].tolist() == [1.0, 2.5]
    assert math.isnan(values[2]) and math.isnan(values[3])


def test_csv_text_is_typed_like_read_csv() -> None:
    assert text_cells(objects("NA", "7.0", "true", "x"), "categorical").tolist() == [
        None,
        "7",
        "True",
        "x",
    ]
    assert text_cells(objects("NA", "1.5"), "numeric").tolist() == [None, "1.5"]


def test_nullable_pandas_dtypes_give_none_for_missing() -> None:
    """pd.NA and NaT are missing values, not the categories "<NA>" and "NaT"."""
    import pandas as pd

    from mlship.scoring.columns import column_values

    frame = pd.DataFrame(
        {
            "flag": pd.array([True, None], dtype="boolean"),
            "count": pd.array([1, None], dtype="Int64"),
            "text": pd.array(["x", None], dtype="string"),
        }
    )
    assert to_categorical(column_values(frame, "text"))[0].tolist() == ["x", ""]
    assert to_categorical(column_values(frame, "flag"))[0].tolist() == ["True", ""]
    numbers, bad = to_numeric(column_values(frame, "count"))
    assert numbers[0] == 1.0 and math.isnan(numbers[1]) and not bad.any()


def test_dates_are_not_numbers() -> None:
    assert to_numeric(np.array(["2020-01-01"], dtype="datetime64[ns]"))[1].tolist() == [True]
