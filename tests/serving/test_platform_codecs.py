"""SageMaker and KServe v1 codecs on a fake predictor."""

from __future__ import annotations

import json

import pytest

from mlship.scoring.problems import InputError
from mlship.serving.codecs import kserve_v1, native, sagemaker
from mlship.serving.errors import status_of
from tests.scoring.fakes import fake_predictor

RECORDS = [
    {"price": 1.0, "discount": 0.0, "store": "1", "promo": "a"},
    {"price": 2.0, "discount": None, "store": "7", "promo": None},
]


def columns(body: bytes, content_type: str) -> dict[str, list[object]]:
    decoded = native.decode(body, content_type, fake_predictor(), "reject")
    return {k: v.tolist() for k, v in decoded.items()}


def test_headerless_csv_jsonlines_and_json_decode_alike() -> None:
    want = columns(json.dumps(RECORDS).encode(), "application/json")
    headerless = b"1.0,0.0,1,a\n2.0,,7,\n"  # what a CSV serializer sends: values only
    with_header = b"price,discount,store,promo\n" + headerless
    lines = b"\n".join(json.dumps(r).encode() for r in RECORDS)
    assert columns(headerless, "text/csv") == columns(with_header, "text/csv")
    got = columns(lines, "application/jsonlines")
    assert got["price"] == want["price"] and got["store"] == want["store"]
    assert columns(headerless, "text/csv")["store"] == ["1", "7"]


def test_a_data_row_whose_category_spells_a_column_name_is_not_a_header() -> None:
    got = columns(b"1.0,0.0,1,price\n2.0,,7,\n", "text/csv")
    assert got["promo"] == ["price", None] and got["price"] == ["1.0", "2.0"]  # two rows


def test_a_header_with_extra_or_reordered_names_is_still_a_header() -> None:
    reordered = columns(b"promo,store,discount,price\na,1,0.0,1.0\n", "text/csv")
    assert reordered["store"] == ["1"] and reordered["promo"] == ["a"]
    with pytest.raises(InputError, match="unknown column"):
        columns(b"price,discount,store,promo,order_id\n1.0,0.0,1,a,9\n", "text/csv")


def test_headerless_csv_of_the_wrong_width_names_the_row() -> None:
    with pytest.raises(InputError, match="CSV row 1: expected 4 fields, got 3"):
        columns(b"1.0,0.0,1,a\n2.0,7,x\n", "text/csv")


@pytest.mark.parametrize(
    ("accept", "kind"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("application/jsonlines", "application/jsonlines"),
        ("text/html, text/csv;q=0.9", "text/csv"),
        ("application/json;q=0, text/csv", "text/csv"),  # q=0: not acceptable
        ("text/csv;q=0.1, application/json", "application/json"),  # the higher q wins
        ("application/jsonlines;q=0.5, text/csv;q=0.5", "application/jsonlines"),  # tie: first
        ("text/*", "text/csv"),
        ("text/csv;q=0.5,", "text/csv"),  # an empty item is nothing, not JSON
        ("application/json;q=0, */*", "application/jsonlines"),  # its own q=0 beats */*
        ("*/*;q=0.1, text/csv", "text/csv"),
    ],
)
def test_the_reply_type_follows_accept(accept: str | None, kind: str) -> None:
    assert sagemaker.reply_type(accept) == kind


@pytest.mark.parametrize(
    "accept", ["application/x-protobuf", "text/csv;q=0, application/json;q=0", "text/html,"]
)
def test_an_unacceptable_accept_is_a_406(accept: str) -> None:
    with pytest.raises(InputError, match="cannot reply as") as caught:
        sagemaker.reply_type(accept)
    assert status_of(caught.value) == 406


def test_replies_in_each_format() -> None:
    predictor = fake_predictor()
    result = predictor.predict(
        native.decode(json.dumps(RECORDS).encode(), None, predictor, "reject")
    )
    csv_lines = sagemaker.render(result, predictor, "text/csv").decode().splitlines()
    assert [line.split(",")[0] for line in csv_lines] == result.predictions
    assert len(csv_lines[0].split(",")) == 3
    lines = sagemaker.render(result, predictor, "application/jsonlines").splitlines()
    assert [json.loads(line)["prediction"] for line in lines] == result.predictions
    as_json = json.loads(sagemaker.render(result, predictor, "application/json"))
    assert as_json["predictions"] == result.predictions


def test_kserve_v1() -> None:
    predictor = fake_predictor()
    body = json.dumps({"instances": RECORDS}).encode()
    result = predictor.predict(kserve_v1.decode(body, None, predictor, "reject"))
    reply = kserve_v1.encode(result, predictor)
    assert reply["predictions"] == result.predictions and len(reply["probabilities"]) == 2
    with pytest.raises(InputError, match="instances"):
        kserve_v1.decode(json.dumps(RECORDS).encode(), None, predictor, "reject")
    assert kserve_v1.model_status(predictor, "oj") == {"name": "oj", "ready": True}
    assert kserve_v1.model_status(None, "oj")["ready"] is False


def test_mlflow_inputs_records_and_columnar() -> None:
    want = columns(json.dumps(RECORDS).encode(), "application/json")
    records = {"inputs": RECORDS, "params": {}}
    columnar = {"inputs": {k: [r[k] for r in RECORDS] for k in RECORDS[0]}}
    assert columns(json.dumps(records).encode(), "application/json") == want
    assert columns(json.dumps(columnar).encode(), "application/json") == want
    ragged = {"inputs": {"price": [1.0], "discount": [0.0, 1.0], "store": ["1"], "promo": ["a"]}}
    with pytest.raises(InputError, match="same length"):
        columns(json.dumps(ragged).encode(), "application/json")
