"""Request codecs on a fake predictor: every body shape decodes to the same columns, and every
malformed body is a typed problem with the status mapped in one place."""

from __future__ import annotations

import json

import pytest

from mlship.scoring.problems import Code, InputError
from mlship.serving.codecs import native, vertex
from mlship.serving.errors import status_of
from tests.scoring.fakes import fake_predictor

NAMES = ["price", "discount", "store", "promo"]
RECORDS = [
    {"price": 1.0, "discount": 0.0, "store": "1", "promo": "a"},
    {"price": 2.0, "discount": None, "store": "7", "promo": None},
]
ARRAYS = [[r[n] for n in NAMES] for r in RECORDS]


def decode(body: object, content_type: str = "application/json") -> dict[str, list[object]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    columns = native.decode(raw, content_type, fake_predictor(), "reject")
    return {name: values.tolist() for name, values in columns.items()}


def status(body: object, content_type: str = "application/json") -> tuple[int, InputError]:
    with pytest.raises(InputError) as error:
        decode(body, content_type)
    return status_of(error.value), error.value


def test_every_shape_decodes_to_the_same_columns() -> None:
    want = decode(RECORDS)
    csv = b"price,discount,store,promo\n1.0,0.0,1,a\n2.0,,7,\n"
    shapes = [
        ARRAYS,
        {"instances": RECORDS},
        {"instances": ARRAYS},
        {"dataframe_records": RECORDS},
        {"dataframe_split": {"columns": NAMES, "data": ARRAYS}},
    ]
    for shape in shapes:
        assert decode(shape) == want, shape
    from_csv = decode(csv, "text/csv; charset=utf-8")
    assert from_csv["store"] == ["1", "7"] and from_csv["promo"] == ["a", None]


@pytest.mark.parametrize(
    ("body", "code", "http"),
    [
        (b"", Code.malformed, 400),
        (b"[{", Code.malformed, 400),
        (b"[]", Code.no_rows, 400),
        ({"rows": []}, Code.malformed, 400),
        ([1, 2], Code.malformed, 400),
        ([RECORDS[0], 3], Code.row_shape, 422),
        ([[1, 2]], Code.row_shape, 422),
        ([{**RECORDS[0], "colour": "red"}], Code.unknown_column, 422),
        (
            {"dataframe_split": {"columns": [*NAMES, "price"], "data": []}},
            Code.duplicate_column,
            400,
        ),
        ({"dataframe_split": {"columns": NAMES, "data": [[1]]}}, Code.malformed, 400),
    ],
)
def test_bad_bodies_are_typed(body: object, code: Code, http: int) -> None:
    got, error = status(body)
    assert error.problems[0].code is code
    assert got == http


def test_unsupported_media_type_is_415() -> None:
    got, error = status(b"a=1", "application/x-www-form-urlencoded")
    assert got == 415 and error.problems[0].code is Code.unsupported_media_type
    assert "application/vnd.apache.arrow.stream" in error.message  # pyarrow is here


def test_a_missing_field_is_named_by_row() -> None:
    missing = [RECORDS[0], {k: v for k, v in RECORDS[1].items() if k != "store"}]
    _, error = status(missing)
    assert [(p.row, p.column) for p in error.problems] == [(1, "store")]


def test_csv_rows_of_the_wrong_width_are_400_naming_the_row() -> None:
    got, error = status(b"price,discount,store,promo\n1,2,3\n", "text/csv")
    assert got == 400 and error.message == "CSV row 0: expected 4 fields, got 3"


def test_a_lone_record_is_told_to_go_in_an_array() -> None:
    got, error = status(RECORDS[0])
    assert got == 400 and "single record" in error.message and "[{...}]" in error.message


def test_one_list_per_column_is_told_of_the_columnar_form() -> None:
    columnar = {name: [r[name] for r in RECORDS] for name in NAMES}  # pandas' to_dict("list")
    got, error = status(columnar)
    assert got == 400 and '{"inputs": {' in error.message and "single record" not in error.message
    assert decode({"inputs": columnar}) == decode(RECORDS)  # and the advice works
    by_index = {name: dict(enumerate(values)) for name, values in columnar.items()}  # to_dict()
    assert '{"inputs": {' in status(by_index)[1].message


def test_bad_utf8_is_named_by_byte_in_json_and_json_lines() -> None:
    _, whole = status(b'[{"price": "\xff"}]')
    assert whole.message == "malformed JSON: not UTF-8 text (byte 12)"
    _, lines = status(b'{"price": 1}\n{"price": "\xff"}\n', "application/jsonlines")
    assert lines.message == "JSON line 1: not UTF-8 text (byte 11)"


def test_an_object_of_other_keys_lists_them_and_says_when_it_stopped() -> None:
    _, few = status({"rows": [], "meta": 1})
    assert "got 2 other key(s): 'meta', 'rows'" in few.message and "..." not in few.message
    _, many = status({f"k{i:02}": i for i in range(12)})
    assert "got 12 other key(s)" in many.message and many.message.endswith("'k09', ...")


def test_replies() -> None:
    predictor = fake_predictor()
    result = predictor.predict(
        native.decode(json.dumps(RECORDS).encode(), None, predictor, "reject")
    )
    reply = native.encode(result, predictor)
    assert set(reply) == {"predictions", "probabilities", "model"}
    assert reply["model"] == {"name": "fake", "version": "3", "run_id": "r1"}
    vertex_reply = vertex.encode(result, predictor)
    assert set(vertex_reply["predictions"][0]) == {"label", "probabilities"}
