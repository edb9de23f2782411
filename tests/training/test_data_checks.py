"""Training data that would silently make a bad model is refused; doubtful data is warned about."""

from __future__ import annotations

import gzip
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest

from mlship.config import Settings, load_settings
from mlship.errors import DataError
from mlship.training.data import prepare, read_table
from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV


def settings(*overrides: str) -> Settings:
    return load_settings(BASE_CONFIG, None, list(overrides), ENV_DIR)


@pytest.fixture(scope="module")
def oj() -> pd.DataFrame:
    return pd.read_csv(OJ_CSV)


def test_csv_cut_off_mid_row_is_refused_naming_file_and_line(
    cut_csv: tuple[Path, int, int],
) -> None:
    # Before: pandas padded the cut row with NaN; 533 of 1,070 rows trained, exit 0.
    path, line, fields = cut_csv
    assert pd.read_csv(path).shape[0] == line - 1  # pandas alone accepts it
    with pytest.raises(DataError) as caught:
        read_table(str(path))
    message = str(caught.value)
    assert message == (
        f"data.uri {str(path)!r}: line {line} has {fields} of 18 fields; "
        "the file looks cut off mid-row"
    )


def test_cut_off_gzip_and_fsspec_csv_are_refused(cut_csv: tuple[Path, int, int]) -> None:
    path, line, _ = cut_csv
    zipped = path.with_suffix(".csv.gz")
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(DataError, match=f"line {line} has"):
        read_table(str(zipped))
    with fsspec.open("memory://train/oj-cut.csv", "wb") as handle:
        handle.write(path.read_bytes())
    with pytest.raises(DataError, match=f"'memory://train/oj-cut.csv': line {line} has"):
        read_table("memory://train/oj-cut.csv")


@pytest.mark.parametrize(
    "text",
    [
        "a,b,c\n1,2,3",  # no newline at the end
        "a,b,c\n1,2,3\n\n\n",  # blank lines at the end
        "a,b,c\n1,2,\n",  # an empty last value is still a field
        'a,b,c\n1,2,"line one\nline two"\n',  # a quoted value spanning lines
        "a,b,c\r\n1,2,3\r\n",  # Windows line ends
    ],
)
def test_whole_csv_files_are_read(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(text, newline="")
    assert read_table(str(path)).shape == (1, 3)


def test_tsv_with_an_empty_last_field_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.tsv"
    path.write_text("a\tb\tc\n1\t2\t\n")
    assert read_table(str(path)).shape == (1, 3)


def test_whole_oj_file_reads(oj: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(read_table(str(OJ_CSV)), oj)


def test_entirely_null_feature_is_refused_naming_the_column(oj: pd.DataFrame) -> None:
    # Before: it trained (raw scikit-learn warnings only) and the model ignored the column.
    frame = oj.assign(Coupon=np.nan)
    with pytest.raises(
        DataError, match=r"^feature 'Coupon': every value is missing \(1,070 rows\)"
    ):
        prepare(frame, settings())
    categorical = oj.assign(Store7=None)
    with pytest.raises(DataError, match=r"^feature 'Store7': every value is missing"):
        prepare(categorical, settings())


def test_entirely_null_column_that_is_dropped_is_fine(oj: pd.DataFrame) -> None:
    frame = oj.assign(Coupon=np.nan)
    assert prepare(frame, settings("data.features.drop=[STORE, Coupon]")).warnings == ()


def test_clean_data_has_no_warnings(oj: pd.DataFrame) -> None:
    assert prepare(oj, settings()).warnings == ()


def test_constant_and_mostly_missing_features_are_warned_one_line_each(
    oj: pd.DataFrame,
) -> None:
    frame = oj.assign(Const=7)
    frame.loc[frame.index[:600], "LoyalCH"] = np.nan
    frame.loc[frame.index[:1069], "Store7"] = None  # one value left: constant and missing
    warnings = prepare(frame, settings()).warnings
    assert warnings == (  # numeric features first, then categorical ones, in file order
        "feature 'LoyalCH': 56% of values are missing (600 of 1,070 rows)",
        "feature 'Const' is constant (7 in every row); it cannot help the model",
        "feature 'Store7' is constant (No in every row that has one); it cannot help the model",
        "feature 'Store7': 99.9% of values are missing (1,069 of 1,070 rows)",
    )
    assert all("\n" not in line for line in warnings)


def test_half_missing_is_not_mostly_missing(oj: pd.DataFrame) -> None:
    frame = oj.copy()
    frame.loc[frame.index[:535], "LoyalCH"] = np.nan
    assert prepare(frame, settings()).warnings == ()


def test_class_under_one_percent_is_warned(oj: pd.DataFrame) -> None:
    rare = pd.concat([oj[oj["Purchase"] == "CH"], oj[oj["Purchase"] == "MM"].head(6)])
    warnings = prepare(rare, settings()).warnings
    assert warnings == (
        "class 'MM' is 0.9% of rows (6 of 659); the model may rarely or never predict it",
    )
    regression = prepare(oj, settings("task=regression", "data.target=PriceCH"))
    assert regression.warnings == ()
