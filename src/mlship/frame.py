"""Column coercion shared by training and scoring, so both see features the same way.

Numeric features become float64 (so a missing value is a NaN the imputer can fill, never an
integer-column rejection), categorical features become Python strings with missing values kept
as NaN. An integral number given for a categorical column (``7`` or ``7.0``) becomes ``"7"``,
matching how the category was spelled when the model was trained from a CSV of integers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def category_text(value: Any) -> Any:
    """One categorical value as the model saw it in training; missing stays NaN."""
    if value is None:
        return np.nan
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return np.nan
        return str(int(value)) if float(value).is_integer() else str(float(value))
    return str(value)


def as_categorical(series: pd.Series) -> pd.Series:
    """A column as object dtype holding strings or NaN."""
    return pd.Series(
        [category_text(v) for v in series.to_numpy(dtype=object)],
        index=series.index,
        dtype=object,
        name=series.name,
    )


def numeric_failures(series: pd.Series) -> pd.Series:
    """The values of ``series`` that are present but not numbers (by original index)."""
    coerced = pd.to_numeric(series, errors="coerce")
    bad = coerced.isna() & series.notna()
    return series[bad]


def as_numeric(series: pd.Series) -> pd.Series:
    """A column as float64; call ``numeric_failures`` first to report what would be lost."""
    return pd.to_numeric(series, errors="coerce").astype("float64")


def coerce_features(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> pd.DataFrame:
    """Select the feature columns in model order and coerce each to its role's dtype."""
    columns: dict[str, pd.Series] = {}
    for name in numeric:
        columns[name] = as_numeric(frame[name])
    for name in categorical:
        columns[name] = as_categorical(frame[name])
    return pd.DataFrame(columns, index=frame.index)
