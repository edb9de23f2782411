"""Split strategies on OJ: time holds out the latest weeks, group keeps a store on one side,
stratified is the notebook's split, and the CV folds of the training part follow the rule."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from mlship.config import Settings, load_settings
from mlship.errors import ConfigError
from mlship.training import job, splits
from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV


def settings(*overrides: str) -> Settings:
    return load_settings(BASE_CONFIG, None, [f"data.uri={OJ_CSV}", *overrides], ENV_DIR)


def prepared(*overrides: str) -> job.Prepared:
    return job.prepare(settings(*overrides), lambda _: None)


def test_time_split_holds_out_the_latest_weeks() -> None:
    data = prepared("split.strategy=time", "split.time_column=WeekofPurchase")
    train, test = data.parts.x_train, data.parts.x_test
    assert train["WeekofPurchase"].max() < test["WeekofPurchase"].min()
    assert 0.15 < len(test) / 1070 < 0.3 and len(train) + len(test) == 1070


def test_group_split_keeps_each_store_on_one_side_even_a_dropped_column() -> None:
    # STORE is in data.features.drop: the split reads it from the raw table.
    data = prepared("split.strategy=group", "split.group_column=STORE")
    raw = data.raw
    train_stores = set(raw.loc[data.parts.x_train.index, "STORE"])
    test_stores = set(raw.loc[data.parts.x_test.index, "STORE"])
    assert train_stores and test_stores and not train_stores & test_stores
    assert "STORE" not in data.parts.x_train.columns


def test_a_missing_split_column_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        prepared("split.strategy=time", "split.time_column=Week")
    message = str(caught.value)
    assert message.startswith("split.time_column: column 'Week' not in the data (columns: ")
    assert "\n" not in message


def test_stratified_default_is_train_test_split_row_for_row() -> None:
    data = prepared()
    expected = train_test_split(
        data.dataset.features, data.dataset.target, test_size=0.2, random_state=42,
        stratify=data.dataset.target,
    )  # fmt: skip
    assert list(data.parts.x_test.index) == list(expected[1].index)
    assert list(prepared("split.stratify=false").parts.x_test.index) != list(expected[1].index)


def test_time_cv_folds_validate_on_later_weeks_than_they_fit() -> None:
    s = settings("split.strategy=time", "split.time_column=WeekofPurchase")
    data = job.prepare(s, lambda _: None)
    weeks = data.parts.x_train["WeekofPurchase"].to_numpy()
    folds = splits.cv_folds(data.parts, s.split, s.task, 3)
    assert len(folds) == 3
    for fit, val in folds:
        assert weeks[fit].max() <= weeks[val].min()


def test_group_cv_folds_never_share_a_store() -> None:
    s = settings("split.strategy=group", "split.group_column=StoreID")
    data = job.prepare(s, lambda _: None)
    stores = data.parts.x_train["StoreID"].to_numpy()
    for fit, val in splits.cv_folds(data.parts, s.split, s.task, 2):
        assert not set(stores[fit]) & set(stores[val])
        assert len(np.intersect1d(fit, val)) == 0


def test_train_cross_validation_uses_the_strategys_folds() -> None:
    """`mlship train`'s CV metrics come from the same folds as tune and compare: with a time
    split they differ from shuffled stratified folds, and equal the forward-chaining ones."""
    from sklearn.model_selection import cross_val_score

    from mlship.training.evaluate import cross_validate
    from mlship.training.pipeline import build_pipeline

    s = settings("split.strategy=time", "split.time_column=WeekofPurchase", "split.cv_folds=3")
    data = job.prepare(s, lambda _: None)
    ds = data.dataset
    model = build_pipeline(ds.numeric, ds.categorical, s.model, s.task, s.split.seed)
    got = cross_validate(model, data.parts, s.task, s.split)["cv_accuracy_mean"]
    x, y = data.parts.x_train, data.parts.y_train
    folds = splits.cv_folds(data.parts, s.split, s.task, 3)
    forward = cross_val_score(model, x, y, cv=folds, scoring="accuracy").mean()
    shuffled = cross_val_score(model, x, y, cv=3, scoring="accuracy").mean()
    assert got == pytest.approx(forward, abs=1e-12)
    assert got != pytest.approx(shuffled, abs=1e-6)
