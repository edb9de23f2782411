"""The Open Inference Protocol codec on a fake predictor: both tabular conventions, outputs,
id, and errors."""

from __future__ import annotations

import json

import pytest

from mlship.scoring.problems import InputError
from mlship.serving.codecs import oip
from tests.scoring.fakes import fake_predictor

ROWS = [[1.0, 0.0, "1", "a"], [2.0, None, "7", None]]
NAMES = ["price", "discount", "store", "promo"]


def per_column() -> dict[str, object]:
    types = {"price": "FP64", "discount": "FP64", "store": "BYTES", "promo": "BYTES"}
    return {
        "id": "req-1",
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": n, "shape": [2], "datatype": types[n], "data": [r[j] for r in ROWS]}
            for j, n in enumerate(NAMES)
        ],
    }


def matrix(nested: bool = False) -> dict[str, object]:
    data = ROWS if nested else [v for r in ROWS for v in r]
    return {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "BYTES", "data": data}]}


def decode(body: dict[str, object]) -> tuple[dict[str, list[object]], oip.InferRequest]:
    columns, request = oip.decode(json.dumps(body).encode(), None, fake_predictor(), "reject")
    return {k: v.tolist() for k, v in columns.items()}, request


def test_both_conventions_decode_to_the_same_columns() -> None:
    a, request = decode(per_column())
    assert request.id == "req-1" and request.outputs is None
    assert decode(matrix())[0] == a == decode(matrix(nested=True))[0]
    assert a["store"] == ["1", "7"]


def test_reply_has_label_and_probabilities_with_class_names() -> None:
    predictor = fake_predictor()
    columns, request = oip.decode(json.dumps(per_column()).encode(), None, predictor, "reject")
    reply = oip.encode(predictor.predict(columns), predictor, request)
    assert (
        reply["id"] == "req-1" and reply["model_name"] == "fake" and reply["model_version"] == "3"
    )
    label, proba = reply["outputs"]
    assert label["name"] == "label" and label["datatype"] == "BYTES" and label["shape"] == [2]
    assert proba["shape"] == [2, 2] and proba["parameters"]["classes"] == ["no", "yes"]
    assert len(proba["data"]) == 4


def test_requested_outputs_are_honoured() -> None:
    predictor = fake_predictor()
    body = {**per_column(), "outputs": [{"name": "probabilities"}]}
    columns, request = oip.decode(json.dumps(body).encode(), None, predictor, "reject")
    reply = oip.encode(predictor.predict(columns), predictor, request)
    assert [o["name"] for o in reply["outputs"]] == ["probabilities"]
    with pytest.raises(InputError, match="unknown output 'scores'"):
        decode({**per_column(), "outputs": [{"name": "scores"}]})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": []}, "needs 'inputs'"),
        (
            {"inputs": [{"name": "price", "shape": [3], "datatype": "FP64", "data": [1, 2]}]},
            "holds 3",
        ),
        (
            {"inputs": [{"name": "price", "shape": [1], "datatype": "FLOAT", "data": [1]}]},
            "datatype",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
            "k = 4",
        ),
        ({**matrix(), "id": 7}, "'id' must be a string"),
    ],
)
def test_malformed_requests_are_named(body: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        decode(body)


def test_a_missing_column_is_named() -> None:
    body = per_column()
    body["inputs"] = body["inputs"][:3]  # type: ignore[index]
    with pytest.raises(InputError, match="column 'promo': required column is missing"):
        decode(body)


def test_model_metadata_lists_every_feature() -> None:
    meta = oip.model_metadata(fake_predictor())
    assert [i["name"] for i in meta["inputs"]] == NAMES
    assert [i["datatype"] for i in meta["inputs"]] == ["FP64", "FP64", "BYTES", "BYTES"]
    assert {o["name"] for o in meta["outputs"]} == {"label", "probabilities"}
