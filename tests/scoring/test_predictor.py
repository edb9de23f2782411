"""The predictor core on a fake backend: column sets, coercion, typed problems, the row mask."""

from __future__ import annotations

import numpy as np
import pytest

from mlship.scoring.predictor import Predictor
from mlship.scoring.problems import Code, InputError
from tests.scoring.fakes import FakeBackend, fake_predictor


def cols(**values: list[object]) -> dict[str, np.ndarray]:
    base: dict[str, list[object]] = {
        "price": [1.0, 2.0, 3.0],
        "discount": [0.0, None, 0.5],
        "store": ["1", "7", 7],
        "promo": ["a", None, "b"],
    }
    base |= values
    out = {}
    for name, column in base.items():
        array = np.empty(len(column), dtype=object)
        array[:] = column
        out[name] = array
    return out


def test_valid_rows_score_and_coerce() -> None:
    predictor = fake_predictor()
    result = predictor.predict(cols())
    assert result.predictions == ["yes", "yes", "yes"]
    assert result.probabilities is not None
    assert result.probabilities[:, 1] == pytest.approx(1 / (1 + np.exp(-np.array([1, 3, 3.5]))))
    seen = predictor.backend.calls[-1]  # type: ignore[attr-defined]
    assert seen["price"].dtype == np.float64
    assert seen["store"].tolist() == ["1", "7", "7"]  # the integer 7 spelled as training did
    assert seen["promo"].tolist() == ["a", "", "b"]  # missing category marker


def test_every_problem_is_typed_located_and_uncapped() -> None:
    predictor = fake_predictor()
    many = cols(price=["x"] * 30 + [1.0], discount=[0.0] * 31, store=["1"] * 31, promo=["a"] * 31)
    checked = predictor.validate(many)
    assert len(checked.problems) == 30
    assert {p.code for p in checked.problems} == {Code.not_a_number}
    assert checked.bad.tolist() == [True] * 30 + [False]
    keep, good = checked.good()
    assert keep.tolist() == [30]
    assert good["price"].tolist() == [1.0]


def test_problems_are_sorted_by_row_then_signature_order() -> None:
    predictor = fake_predictor()
    checked = predictor.validate(
        cols(price=[None, 1.0, 1e39], store=[None, "1", {"a": 1}], discount=[0, 0, float("inf")])
    )
    got = [(p.row, p.column, p.code) for p in checked.problems]
    assert got == [
        (0, "price", Code.null_not_allowed),
        (0, "store", Code.null_not_allowed),
        (2, "price", Code.out_of_range),
        (2, "discount", Code.out_of_range),
        (2, "store", Code.not_a_category),
    ]
    assert predictor.score(checked).first_problem_by_row()[2].column == "price"


def test_predict_raises_with_every_problem_and_a_summary_line() -> None:
    with pytest.raises(InputError) as error:
        fake_predictor().predict(cols(price=["cheap", 1.0, "dear"]))
    assert error.value.message == "row 0, column 'price': expected a number, got 'cheap' (+1 more)"
    assert [p.row for p in error.value.problems] == [0, 2]


def test_select_checks_the_column_set() -> None:
    predictor = fake_predictor()
    values = cols()
    assert list(predictor.select(list(values), values)) == predictor.column_names
    extra = {**values, "colour": np.array(["red"] * 3, dtype=object)}
    with pytest.raises(InputError) as error:
        predictor.select(list(extra), extra)
    assert [(p.code, p.column) for p in error.value.problems] == [(Code.unknown_column, "colour")]
    assert list(predictor.select(list(extra), extra, extra="ignore")) == predictor.column_names
    partial = {k: v for k, v in values.items() if k != "store"}
    with pytest.raises(InputError, match="column 'store': required column is missing"):
        predictor.select(list(partial), partial)
    with pytest.raises(InputError, match="given more than once"):
        predictor.select([*values, "price"], values)


def test_no_rows_is_a_request_problem() -> None:
    with pytest.raises(InputError) as error:
        fake_predictor().validate(cols(price=[], discount=[], store=[], promo=[]))
    assert error.value.problems[0].code is Code.no_rows


def test_regression_predicts_values_without_probabilities() -> None:
    result = fake_predictor("regression").predict(cols())
    assert result.predictions == [2.0, 4.0, 6.0]
    assert result.probabilities is None
    assert result.columns() == {"prediction": [2.0, 4.0, 6.0]}


def test_result_columns_follow_the_shared_schema() -> None:
    result = fake_predictor().predict(cols())
    assert list(result.columns()) == ["prediction", "proba_no", "proba_yes"]
    records = result.probability_records()
    assert records is not None and set(records[0]) == {"no", "yes"}


def test_the_fast_numeric_path_and_the_careful_one_agree() -> None:
    predictor = Predictor(FakeBackend(), fake_predictor().columns, fake_predictor().info)
    typed = cols(price=[1.0, 2.0, 3.0])
    texty = cols(price=["1.0", "2", "3e0"])
    a, b = predictor.validate(typed), predictor.validate(texty)
    assert a.ok and b.ok
    assert a.columns["price"].tolist() == b.columns["price"].tolist() == [1.0, 2.0, 3.0]
