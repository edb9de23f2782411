"""Split strategies: which rows are held out, and the CV folds of the training part.

``split.strategy`` is random, stratified (by class), time (the holdout is the latest part by
``split.time_column``, so it is "the future") or group (no value of ``split.group_column`` in
both parts). The CV folds follow the same rule inside the training part: stratified or plain
k-fold, forward-chaining folds in time order, or group k-fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mlship.config import SplitConfig, Task
from mlship.errors import ConfigError, DataError

Folds = list[tuple[np.ndarray, np.ndarray]]


class Table(Protocol):
    """What a split needs of a dataset (``mlship.training.data.Dataset``)."""

    @property
    def features(self) -> pd.DataFrame: ...

    @property
    def target(self) -> pd.Series: ...


@dataclass(frozen=True)
class Split:
    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    # The time or group column's values of the training rows (its CV folds honour them).
    key_train: pd.Series | None = None


def effective(config: SplitConfig, task: Task) -> str:
    """The strategy in force: stratified means random for regression or with stratify off."""
    if config.strategy == "stratified" and (task is Task.regression or not config.stratify):
        return "random"
    return config.strategy


def _key_column(dataset: Table, config: SplitConfig, frame: pd.DataFrame | None) -> pd.Series:
    """The time or group column, from the features or else the raw table (a dropped id)."""
    key = "time_column" if config.strategy == "time" else "group_column"
    name = str(getattr(config, key))
    for source in (dataset.features, frame):
        if source is not None and name in source.columns:
            column: pd.Series = source.loc[dataset.features.index, name]
            if column.isna().any():
                raise ConfigError(f"split.{key}: column {name!r} has missing values")
            return column
    known = ", ".join(map(str, (frame if frame is not None else dataset.features).columns))
    raise ConfigError(f"split.{key}: column {name!r} not in the data (columns: {known})")


def _time_order(column: pd.Series) -> pd.Series:
    """Numbers as they are; anything else read as dates."""
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.astype("float64")
    try:
        return pd.to_datetime(column)
    except (ValueError, TypeError):
        raise ConfigError(
            f"split.time_column: column {column.name!r} is neither numbers nor dates "
            f"(e.g. {column.iloc[0]!r})"
        ) from None


def _time_holdout(key: pd.Series, test_size: float) -> np.ndarray:
    """A mask of the latest rows: every row at or after the cut time (ties stay together)."""
    times = _time_order(key)
    ordered = np.sort(times.to_numpy())
    cut = ordered[len(ordered) - max(1, round(test_size * len(ordered)))]
    test = (times >= cut).to_numpy()
    if test.all():
        raise DataError(f"split.time_column {key.name!r}: one time value only; nothing to hold out")
    return np.asarray(test)


def _group_holdout(key: pd.Series, config: SplitConfig) -> np.ndarray:
    from sklearn.model_selection import GroupShuffleSplit

    groups = key.astype(str).to_numpy()
    if len(set(groups)) < 2:
        raise DataError(f"split.group_column {key.name!r}: one group only; nothing to hold out")
    splitter = GroupShuffleSplit(n_splits=1, test_size=config.test_size, random_state=config.seed)
    _, test_idx = next(splitter.split(groups, groups=groups))
    test = np.zeros(len(groups), dtype=bool)
    test[test_idx] = True
    return test


def _check_stratifiable(target: pd.Series) -> None:
    counts = target.value_counts()
    rare = counts[counts < 2]
    if not rare.empty:
        raise DataError(
            f"target: class {rare.index[0]!r} has a single row; a stratified split needs "
            "two (set split.strategy=random or add data)"
        )


def _random_split(dataset: Table, config: SplitConfig, stratified: bool) -> Split:
    """Seeded, stratified by class if asked: ``train_test_split``'s rows and row order."""
    from sklearn.model_selection import train_test_split

    if stratified:
        _check_stratifiable(dataset.target)
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            dataset.features,
            dataset.target,
            test_size=config.test_size,
            random_state=config.seed,
            stratify=dataset.target if stratified else None,
        )
    except ValueError as exc:
        raise DataError(f"split: {exc}") from None
    return Split(x_train, x_test, y_train, y_test)


def split(
    dataset: Table, config: SplitConfig, task: Task, frame: pd.DataFrame | None = None
) -> Split:
    """The holdout split ``config.strategy`` asks for; ``frame`` holds non-feature columns."""
    strategy = effective(config, task)
    if strategy in ("random", "stratified"):
        return _random_split(dataset, config, strategy == "stratified")
    key = _key_column(dataset, config, frame)
    test = (
        _time_holdout(key, config.test_size) if strategy == "time" else _group_holdout(key, config)
    )
    x, y = dataset.features, dataset.target
    return Split(x[~test], x[test], y[~test], y[test], key[~test])


def cv_folds(parts: Split, config: SplitConfig, task: Task, folds: int) -> Folds:
    """``folds`` (train, validation) position pairs on the training part, per the strategy."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, TimeSeriesSplit

    strategy = effective(config, task)
    x, y = parts.x_train, parts.y_train
    splitter: Any
    if strategy == "time" and parts.key_train is not None:
        order = np.argsort(_time_order(parts.key_train).to_numpy(), kind="stable")
        pairs = TimeSeriesSplit(n_splits=folds).split(order)
        return [(order[a], order[b]) for a, b in pairs]
    if strategy == "group" and parts.key_train is not None:
        groups = parts.key_train.astype(str).to_numpy()
        if len(set(groups)) < folds:
            raise DataError(f"split.group_column: fewer groups than the {folds} CV folds")
        return [(a, b) for a, b in GroupKFold(n_splits=folds).split(x, y, groups)]
    if strategy == "stratified":
        splitter = StratifiedKFold(folds, shuffle=True, random_state=config.seed)
    else:
        splitter = KFold(folds, shuffle=True, random_state=config.seed)
    try:
        return [(a, b) for a, b in splitter.split(x, y)]
    except ValueError as exc:
        raise DataError(f"cross-validation folds: {str(exc).splitlines()[0]}") from None
