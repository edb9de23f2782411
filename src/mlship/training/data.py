"""Read the training table from any fsspec URI, check it against the config, split it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from mlship.config import DataConfig, Settings, Task
from mlship.errors import DataError
from mlship.scoring.columns import (
    MISSING_CATEGORY,
    category_text,
    coerce_features,
    column_values,
    to_numeric,
)
from mlship.storage import infer_format
from mlship.training.quality import (
    check_filled,
    check_last_row,
    class_warnings,
    feature_warnings,
    last_line,
)
from mlship.training.splits import Split, split

__all__ = ["Dataset", "Split", "split"]  # the split lives in training.splits

MOSTLY_NUMERIC = 0.9


@dataclass(frozen=True)
class Dataset:
    """Features and target ready for the pipeline, with what the model must remember."""

    features: pd.DataFrame
    target: pd.Series
    numeric: list[str]
    categorical: list[str]
    classes: list[str]
    positive_class: str | None
    digest: str
    # One line each: what is legal but likely to make a poor model (constant or mostly missing
    # features, a very rare class). The job prints them and logs them as the run tag
    # ``data.warnings``.
    warnings: tuple[str, ...] = ()

    @property
    def nullable(self) -> list[str]:
        """Feature columns with a missing value in training; scoring accepts gaps only there."""
        numeric = [c for c in self.numeric if self.features[c].isna().any()]
        categorical = [c for c in self.categorical if (self.features[c] == MISSING_CATEGORY).any()]
        return numeric + categorical


def read_table(
    uri: str, fmt: str = "auto", storage_options: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Read a CSV or Parquet table from a local path or any fsspec URI."""
    try:
        kind = infer_format(uri, fmt)
    except DataError:
        raise DataError(
            f"data.uri {uri!r}: cannot tell the format; set data.format to csv or parquet"
        ) from None
    options = storage_options or None
    if "://" not in uri and not Path(uri).exists():
        raise DataError(f"data.uri {uri!r}: no such file")
    try:
        if kind == "parquet":
            return pd.read_parquet(uri, storage_options=options)
        sep = "\t" if uri.lower().endswith(".tsv") else ","
        frame = pd.read_csv(uri, storage_options=options, sep=sep)
        last = last_line(uri, options)
    except ImportError as exc:
        raise DataError(
            f"data.uri {uri!r}: the filesystem for this URI is not installed ({exc})"
        ) from None
    except Exception as exc:  # any backend error becomes one line naming the URI
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"data.uri {uri!r}: cannot read it: {reason}") from None
    check_last_row(uri, last, sep, frame.shape[1])
    return frame


def fingerprint(frame: pd.DataFrame) -> str:
    """A content digest of a table (values and column names), independent of where it lives."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def sample(frame: pd.DataFrame, config: DataConfig, task: Task) -> pd.DataFrame:
    """Down-sample for data too big to train on whole; stratified by class when classifying."""
    if config.sample is None:
        return frame
    fraction = config.sample.fraction
    if config.sample.rows is not None:
        fraction = min(fraction or 1.0, config.sample.rows / max(len(frame), 1))
    if fraction is None or fraction >= 1.0:
        return frame
    if task is Task.classification:
        return frame.groupby(config.target, group_keys=False).sample(
            frac=fraction, random_state=config.sample.seed
        )
    return frame.sample(frac=fraction, random_state=config.sample.seed)


def _check_listed(frame: pd.DataFrame, key: str, names: list[str]) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise DataError(
            f"{key}: column(s) {', '.join(map(repr, missing))} not in the data "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )


def feature_roles(frame: pd.DataFrame, config: DataConfig) -> tuple[list[str], list[str]]:
    """Numeric and categorical feature columns, declared or inferred from dtypes, file order."""
    spec = config.features
    _check_listed(frame, "data.features.drop", spec.drop)
    _check_listed(frame, "data.features.numeric", spec.numeric or [])
    _check_listed(frame, "data.features.categorical", spec.categorical or [])
    for key, names in (("numeric", spec.numeric or []), ("categorical", spec.categorical or [])):
        if config.target in names:
            raise DataError(f"data.features.{key}: lists the target column {config.target!r}")
    both = set(spec.numeric or []) & set(spec.categorical or [])
    if both:
        raise DataError(f"data.features: {sorted(both)} listed as both numeric and categorical")
    taken = {config.target, *spec.drop, *(spec.numeric or []), *(spec.categorical or [])}
    rest = [c for c in frame.columns if c not in taken]

    def is_number(col: str) -> bool:
        # A text column whose values are nearly all numbers is a numeric column with a few
        # bad cells; calling it categorical would hide them, so it is checked as numeric.
        column = frame[col]
        if is_bool_dtype(column.dtype):
            return False
        if is_numeric_dtype(column.dtype):
            return True
        present = column.dropna()
        if present.empty:
            return False
        return bool(pd.to_numeric(present, errors="coerce").notna().mean() >= MOSTLY_NUMERIC)

    numeric = spec.numeric if spec.numeric is not None else [c for c in rest if is_number(c)]
    if spec.categorical is not None:
        categorical = spec.categorical
    else:
        categorical = [c for c in rest if c not in numeric and not is_number(c)]
    order = {name: i for i, name in enumerate(frame.columns)}
    numeric = sorted(numeric, key=order.__getitem__)
    categorical = sorted(categorical, key=order.__getitem__)
    if not numeric and not categorical:
        raise DataError("data.features: no feature columns left after drop and target")
    return numeric, categorical


def _check_numeric(frame: pd.DataFrame, numeric: list[str]) -> None:
    for name in numeric:
        bad = to_numeric(column_values(frame, name))[1]
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"column {name!r}: {int(bad.sum())} value(s) are not numbers, e.g. "
                f"{frame[name].iloc[row]!r} at row {frame.index[row]}; list it under "
                "data.features.categorical or fix the data"
            )


def _target(frame: pd.DataFrame, settings: Settings) -> tuple[pd.Series, list[str], str | None]:
    name = settings.data.target
    if name not in frame.columns:
        raise DataError(
            f"data.target: column {name!r} not in the data "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    raw = frame[name]
    missing = int(raw.isna().sum())
    if missing:
        raise DataError(f"target column {name!r}: {missing} row(s) have no value")
    if settings.task is Task.regression:
        bad = to_numeric(column_values(frame, name))[1]
        if bad.any():
            first = raw.iloc[int(np.flatnonzero(bad)[0])]
            raise DataError(
                f"target column {name!r}: task is regression but {first!r} is not a number"
            )
        return pd.to_numeric(raw).astype("float64"), [], None
    target = raw.map(category_text)  # labels spelled like categories: 1.0 -> "1"
    classes = sorted(target.unique().tolist())
    if len(classes) < 2:
        raise DataError(
            f"target column {name!r}: classification needs at least two classes, "
            f"found only {classes!r}"
        )
    positive = settings.positive_class
    if positive is not None and positive not in classes:
        raise DataError(f"positive_class {positive!r} is not a class of {name!r}: {classes}")
    if positive is None and len(classes) == 2:
        positive = classes[-1]
    return target.astype(object), classes, positive if len(classes) == 2 else None


def prepare(frame: pd.DataFrame, settings: Settings) -> Dataset:
    """Validate a raw table against the settings and return typed features and target."""
    if frame.empty:
        raise DataError(f"data.uri {settings.data.uri!r}: the table has no rows")
    target, classes, positive = _target(frame, settings)
    numeric, categorical = feature_roles(frame, settings.data)
    check_filled(frame, numeric + categorical)
    _check_numeric(frame, numeric)
    features = coerce_features(frame, numeric, categorical)
    warnings = feature_warnings(frame, numeric + categorical) + class_warnings(target, classes)
    return Dataset(
        features=features,
        target=target,
        numeric=numeric,
        categorical=categorical,
        classes=classes,
        positive_class=positive,
        digest=fingerprint(frame),
        warnings=tuple(warnings),
    )
