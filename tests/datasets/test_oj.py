"""Data tests on data/oj.csv itself: schema, value ranges, internal consistency, class balance.

If the file is replaced or corrupted, these fail before any model is trained on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import OJ_CSV

COLUMNS = [
    "Purchase", "WeekofPurchase", "StoreID", "PriceCH", "PriceMM", "DiscCH", "DiscMM",
    "SpecialCH", "SpecialMM", "LoyalCH", "SalePriceMM", "SalePriceCH", "PriceDiff", "Store7",
    "PctDiscMM", "PctDiscCH", "ListPriceDiff", "STORE",
]  # fmt: skip


@pytest.fixture(scope="module")
def oj() -> pd.DataFrame:
    return pd.read_csv(OJ_CSV)


def test_schema(oj: pd.DataFrame) -> None:
    assert list(oj.columns) == COLUMNS
    assert len(oj) == 1070
    assert not oj.isna().any().any()
    numeric = oj.drop(columns=["Purchase", "Store7"])
    assert all(pd.api.types.is_numeric_dtype(t) for t in numeric.dtypes)


def test_categories(oj: pd.DataFrame) -> None:
    assert set(oj["Purchase"]) == {"CH", "MM"}
    assert set(oj["Store7"]) == {"Yes", "No"}
    assert set(oj["StoreID"]) == {1, 2, 3, 4, 7}
    assert set(oj["STORE"]) == {0, 1, 2, 3, 4}
    assert set(oj["SpecialCH"]) <= {0, 1} and set(oj["SpecialMM"]) <= {0, 1}


def test_value_ranges(oj: pd.DataFrame) -> None:
    assert oj["LoyalCH"].between(0, 1).all()
    for brand in ("CH", "MM"):
        assert oj[f"Price{brand}"].between(1.0, 3.0).all()
        assert (oj[f"Disc{brand}"] >= 0).all()
        assert oj[f"PctDisc{brand}"].between(0, 1).all()
    assert oj["WeekofPurchase"].between(227, 278).all()


def test_derived_columns_agree(oj: pd.DataFrame) -> None:
    """Sale price = price - discount; the price differences are what their names say."""
    for brand in ("CH", "MM"):
        sale = oj[f"Price{brand}"] - oj[f"Disc{brand}"]
        assert np.allclose(oj[f"SalePrice{brand}"], sale, atol=0.006)
    assert np.allclose(oj["PriceDiff"], oj["SalePriceMM"] - oj["SalePriceCH"], atol=0.006)
    assert np.allclose(oj["ListPriceDiff"], oj["PriceMM"] - oj["PriceCH"], atol=0.006)
    assert ((oj["StoreID"] == 7) == (oj["Store7"] == "Yes")).all()


def test_class_balance(oj: pd.DataFrame) -> None:
    counts = oj["Purchase"].value_counts()
    assert counts.to_dict() == {"CH": 653, "MM": 417}
    assert counts.min() / counts.sum() > 0.3  # no rare class: stratified splits are safe
