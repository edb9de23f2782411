"""Reading, validating and splitting training data (the data test family)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlship.config import Settings, load_settings
from mlship.errors import DataError
from mlship.training.data import fingerprint, infer_format, prepare, read_table, sample, split
from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV


def settings(*overrides: str) -> Settings:
    return load_settings(BASE_CONFIG, None, list(overrides), ENV_DIR)


@pytest.fixture(scope="module")
def oj() -> pd.DataFrame:
    return pd.read_csv(OJ_CSV)


def test_oj_file_is_what_the_docs_say(oj: pd.DataFrame) -> None:
    assert oj.shape == (1070, 18)
    assert set(oj["Purchase"]) == {"CH", "MM"}
    assert oj.isna().sum().sum() == 0


def test_roles_follow_config_and_dtypes(oj: pd.DataFrame) -> None:
    ds = prepare(oj, settings())
    assert ds.categorical == ["StoreID", "Store7"]
    assert "STORE" not in ds.numeric and "Purchase" not in ds.numeric
    assert ds.numeric[0] == "WeekofPurchase" and len(ds.numeric) == 14
    assert all(ds.features[c].dtype == np.float64 for c in ds.numeric)
    assert set(ds.features["StoreID"]) == {"0", "1", "2", "3", "4", "7"} - {"0"} | {"1"}
    assert ds.classes == ["CH", "MM"] and ds.positive_class == "MM"


def test_inferred_roles_take_strings_as_categorical(oj: pd.DataFrame) -> None:
    ds = prepare(oj, settings("data.features.categorical=null"))
    assert ds.categorical == ["Store7"]
    assert "StoreID" in ds.numeric


def test_missing_target_column_is_named(oj: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"data.target: column 'Bought' not in the data"):
        prepare(oj, settings("data.target=Bought"))


def test_single_class_target_is_rejected(oj: pd.DataFrame) -> None:
    only_ch = oj[oj["Purchase"] == "CH"]
    with pytest.raises(DataError, match="at least two classes, found only \\['CH'\\]"):
        prepare(only_ch, settings())


def test_unknown_listed_column_is_named(oj: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"data.features.drop: column\(s\) 'Nope'"):
        prepare(oj, settings("data.features.drop=[Nope]"))


def test_non_numeric_value_in_numeric_column_names_row(oj: pd.DataFrame) -> None:
    broken = oj.copy()
    broken["PriceCH"] = broken["PriceCH"].astype(object)
    broken.loc[5, "PriceCH"] = "n/a"
    with pytest.raises(DataError, match=r"column 'PriceCH'.*'n/a' at row 5"):
        prepare(broken, settings())


def test_missing_target_values_are_counted(oj: pd.DataFrame) -> None:
    broken = oj.copy()
    broken.loc[[1, 2], "Purchase"] = None
    with pytest.raises(DataError, match="2 row\\(s\\) have no value"):
        prepare(broken, settings())


def test_positive_class_must_exist(oj: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="positive_class 'XX'"):
        prepare(oj, settings("positive_class=XX"))


def test_regression_target_must_be_numeric(oj: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="task is regression but 'CH' is not a number"):
        prepare(oj, settings("task=regression"))


def test_split_is_seeded_and_stratified(oj: pd.DataFrame) -> None:
    ds = prepare(oj, settings())
    first = split(ds, settings().split, settings().task)
    again = split(ds, settings().split, settings().task)
    other = split(ds, settings("split.seed=7").split, settings().task)
    assert first.x_test.index.equals(again.x_test.index)
    assert not first.x_test.index.equals(other.x_test.index)
    assert len(first.x_test) == 214
    whole = (ds.target == "MM").mean()
    assert abs((first.y_test == "MM").mean() - whole) < 0.01


def test_sample_is_stratified_and_seeded(oj: pd.DataFrame) -> None:
    cfg = settings("data.sample.fraction=0.5").data
    half = sample(oj, cfg, settings().task)
    assert len(half) == pytest.approx(535, abs=2)
    assert half.index.equals(sample(oj, cfg, settings().task).index)
    assert abs((half["Purchase"] == "MM").mean() - (oj["Purchase"] == "MM").mean()) < 0.01
    rows = sample(oj, settings("data.sample.rows=100").data, settings().task)
    assert len(rows) == pytest.approx(100, abs=2)


def test_fingerprint_tracks_content(oj: pd.DataFrame) -> None:
    changed = oj.copy()
    changed.loc[0, "PriceCH"] += 0.01
    assert fingerprint(oj) == fingerprint(oj.copy())
    assert fingerprint(oj) != fingerprint(changed)


def test_read_parquet_and_csv_agree(oj: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "oj.parquet"
    oj.to_parquet(path)
    assert infer_format(str(path)) == "parquet"
    pd.testing.assert_frame_equal(read_table(str(path)), read_table(str(OJ_CSV)))


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("does/not/exist.csv", "no such file"),
        ("data.xlsx", "cannot tell the format"),
        ("https://127.0.0.1:9/oj.csv", "cannot read it"),
    ],
)
def test_unreadable_uris_are_named(uri: str, message: str) -> None:
    with pytest.raises(DataError, match=f"data.uri {uri!r}.*{message}".replace("?", "\\?")):
        read_table(uri)
