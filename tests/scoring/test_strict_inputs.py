"""Say no instead of guessing: only numbers and plain decimal text are numbers (issue 10)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlship.scoring.columns import NA_TEXT, is_number_text, shown, text_cells, to_numeric
from mlship.scoring.problems import Code, InputError
from mlship.serving.codecs import native
from mlship.serving.errors import status_of
from tests.scoring.fakes import fake_predictor

ROW = {"price": 1.0, "discount": 0.0, "store": "1", "promo": "a"}


def objects(*values: object) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


@pytest.mark.parametrize("text", ["1", "-2.5", "+.5", "3.", "1e5", "2.5E-3", "0"])
def test_plain_decimal_literals_are_numbers(text: str) -> None:
    values, bad = to_numeric(objects(text))
    assert not bad[0] and values[0] == float(text)


@pytest.mark.parametrize(
    "text",
    ["1_000", "٢٣٧", "２３７", " 0.9 ", "0.9 ", "1,5", "0x10", "inf", "nan", "1e", "--1", " "],  # noqa: RUF001
)
def test_anything_else_float_would_take_is_not(text: str) -> None:
    assert not is_number_text(text)
    assert to_numeric(objects(text))[1].tolist() == [True]
    if text not in NA_TEXT:  # CSV: "nan" is a missing marker, the rest is left for the check
        assert text_cells(objects(text), "numeric").tolist() == [text]


@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_booleans_are_not_numbers(value: object) -> None:
    assert to_numeric(objects(value, 1.0))[1].tolist() == [True, False]
    assert to_numeric(np.array([True, False]))[1].tolist() == [True, True]


def score(body: object) -> InputError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    predictor = fake_predictor()
    with pytest.raises(InputError) as error:
        predictor.predict(native.decode(raw, None, predictor, "reject"))
    return error.value


def test_a_boolean_in_a_numeric_field_is_a_422_naming_row_and_column() -> None:
    error = score([ROW, {**ROW, "price": True}])
    assert status_of(error) == 422
    assert [(p.row, p.column, p.code) for p in error.problems] == [(1, "price", Code.not_a_number)]
    assert "True (a boolean)" in error.message


def test_a_value_nested_a_thousand_deep_is_a_422_with_a_short_message() -> None:
    row = json.dumps({**ROW, "price": "DEEP"})
    for opening, closing in (("[", "]"), ('{"a":', "}")):
        deep = opening * 1000 + "1.0" + closing * 1000
        body = ("[" + row.replace('"DEEP"', deep) + "]").encode()
        error = score(body)
        assert status_of(error) == 422 and len(error.message) < 200
        assert error.problems[0].column == "price"


def test_shown_is_bounded() -> None:
    assert len(shown("x" * 10_000)) < 60
    assert shown(True) == "True (a boolean)"


def test_unknown_keys_beside_instances_are_rejected() -> None:
    predictor = fake_predictor()
    with pytest.raises(InputError, match="unknown key 'junk' beside 'instances'") as error:
        native.decode(
            json.dumps({"instances": [ROW], "junk": 1}).encode(), None, predictor, "reject"
        )
    assert status_of(error.value) == 400
    body = {"instances": [ROW], "parameters": {}}  # Vertex AI and KServe v1 may send it
    assert len(native.decode(json.dumps(body).encode(), None, predictor, "reject")["price"]) == 1


def test_ignored_unknown_columns_are_reported() -> None:
    predictor = fake_predictor()
    heard: list[list[str]] = []
    body = json.dumps([{**ROW, "colour": "red"}, {**ROW, "size": 2, "colour": "blue"}]).encode()
    native.decode(body, None, predictor, "ignore", heard.append)
    assert heard == [["colour", "size"]]
    csv = b"price,discount,store,promo,colour\n1,0,1,a,red\n"
    native.decode(csv, "text/csv", predictor, "ignore", heard.append)
    assert heard[-1] == ["colour"]


def test_unscorable_rows_are_problems_not_nan() -> None:
    predictor = fake_predictor()
    backend = predictor.backend

    def overflowing(columns: dict[str, np.ndarray]) -> np.ndarray:
        out = backend.__class__.probabilities(backend, columns)  # type: ignore[arg-type]
        out[columns["price"] > 100] = np.nan
        return out

    backend.probabilities = overflowing  # type: ignore[method-assign]
    body = json.dumps([ROW, {**ROW, "price": 1e6}]).encode()
    columns = native.decode(body, None, predictor, "reject")
    with pytest.raises(InputError) as error:
        predictor.predict(columns)
    assert [(p.row, p.code) for p in error.value.problems] == [(1, Code.out_of_range)]
    scored = predictor.score(predictor.validate(columns))
    assert scored.keep.tolist() == [0] and scored.prediction is not None
    assert len(scored.prediction.predictions) == 1
