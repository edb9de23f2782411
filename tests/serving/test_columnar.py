"""Columnar bodies and the columnar reply: the same answers as records, the same errors.

Every OJ row goes through each body shape (``dataframe_split``, MLflow's columnar ``inputs``,
array rows, CSV with and without a header, the Open Inference Protocol per column and as one
``[n, k]`` tensor) and must score exactly as the records body does; a bad cell in each shape
must still be a 422 (OIP: a 400, as that protocol says) naming its row and column. The column
fast paths (``mlship.serving.codecs.cells``, ``to_numeric``'s number text) must agree with the
per-cell rules on any cell.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from mlship.scoring.columns import _number, to_numeric
from mlship.serving.codecs import cells

Body = tuple[str, bytes | None, Any, dict[str, str]]  # path, content, json, headers


@pytest.fixture(scope="module")
def metadata(client: TestClient) -> dict[str, Any]:
    reply = client.get("/metadata")
    assert reply.status_code == 200
    data: dict[str, Any] = reply.json()
    return data


@pytest.fixture(scope="module")
def want(client: TestClient, frame: pd.DataFrame) -> dict[str, Any]:
    """The records reply for every OJ row: what each other shape must give."""
    reply = client.post("/score", json=frame.to_dict(orient="records"))
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    assert len(data["predictions"]) == len(frame)
    return data


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = frame.to_dict(orient="records")
    return out


def split_of(frame: pd.DataFrame) -> dict[str, Any]:
    return {"columns": list(frame.columns), "data": frame.to_numpy(dtype=object).tolist()}


def columnar_of(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {name: frame[name].astype(object).tolist() for name in frame.columns}


def oip_columns(frame: pd.DataFrame, categorical: set[str]) -> dict[str, Any]:
    inputs = [
        {
            "name": name,
            "shape": [len(frame)],
            "datatype": "BYTES" if name in categorical else "FP64",
            "data": frame[name].astype(object).tolist(),
        }
        for name in frame.columns
    ]
    return {"inputs": inputs}


def oip_matrix(frame: pd.DataFrame) -> dict[str, Any]:
    rows = frame.to_numpy(dtype=object)
    tensor = {"name": "x", "shape": list(rows.shape), "datatype": "BYTES", "data": rows.tolist()}
    return {"inputs": [tensor]}


def shapes(frame: pd.DataFrame, metadata: dict[str, Any]) -> dict[str, Body]:
    """Every columnar (or array) body of ``frame``, model columns in signature order."""
    order = metadata["column_order"]
    frame = frame[order]
    categorical = {c["name"] for c in metadata["signature"] if c["type"] == "string"}
    infer = f"/v2/models/{metadata['name']}/infer"
    csv_type = {"Content-Type": "text/csv"}
    return {
        "arrays": ("/score", None, frame.to_numpy(dtype=object).tolist(), {}),
        "dataframe_split": ("/score", None, {"dataframe_split": split_of(frame)}, {}),
        "inputs columnar": ("/score", None, {"inputs": columnar_of(frame)}, {}),
        "csv": ("/score", frame.to_csv(index=False).encode(), None, csv_type),
        "csv headerless": ("/score", frame.to_csv(index=False, header=False).encode(), None,
                           csv_type),
        "oip per column": (infer, None, oip_columns(frame, categorical), {}),
        "oip matrix": (infer, None, oip_matrix(frame), {}),
    }  # fmt: skip


def post(client: TestClient, body: Body, query: str = "") -> Any:
    path, content, document, headers = body
    if content is not None:
        return client.post(path + query, content=content, headers=headers)
    return client.post(path + query, json=document, headers=headers)


def answers(reply: Any) -> tuple[list[Any], list[dict[str, float]]]:
    """(labels, probability records) of a /score or an OIP reply."""
    assert reply.status_code == 200, reply.text
    data = reply.json()
    if "outputs" not in data:
        return data["predictions"], data["probabilities"]
    outputs = {o["name"]: o for o in data["outputs"]}
    classes = outputs["probabilities"]["parameters"]["classes"]
    flat = outputs["probabilities"]["data"]
    width = len(classes)
    probabilities = [
        dict(zip(classes, flat[i : i + width], strict=True)) for i in range(0, len(flat), width)
    ]
    return outputs["label"]["data"], probabilities


@pytest.mark.slow
@pytest.mark.parametrize(
    "shape",
    ["arrays", "dataframe_split", "inputs columnar", "csv", "csv headerless", "oip per column",
     "oip matrix"],
)  # fmt: skip
def test_each_shape_scores_every_row_exactly_as_records(
    client: TestClient,
    frame: pd.DataFrame,
    metadata: dict[str, Any],
    want: dict[str, Any],
    shape: str,
) -> None:
    labels, probabilities = answers(post(client, shapes(frame, metadata)[shape]))
    assert labels == want["predictions"]
    assert probabilities == want["probabilities"]  # exactly: the same float64 inputs


@pytest.mark.slow
def test_the_columnar_reply_holds_the_records_numbers_by_class(
    client: TestClient, frame: pd.DataFrame, metadata: dict[str, Any], want: dict[str, Any]
) -> None:
    for shape in ("dataframe_split", "inputs columnar", "csv"):
        reply = post(client, shapes(frame, metadata)[shape], "?format=columnar")
        assert reply.status_code == 200, reply.text
        data = reply.json()
        assert data["predictions"] == want["predictions"]
        assert data["model"] == want["model"]
        by_class = data["probabilities"]
        assert list(by_class) == metadata["classes"]
        rows = [
            dict(zip(by_class, row, strict=True)) for row in zip(*by_class.values(), strict=True)
        ]
        assert rows == want["probabilities"]


@pytest.mark.slow
def test_an_unknown_reply_format_is_a_400(client: TestClient, frame: pd.DataFrame) -> None:
    reply = client.post("/score?format=xml", json=records_of(frame.head(2)))
    assert reply.status_code == 400
    assert "unknown reply format 'xml'" in reply.json()["error"]


def spoil(frame: pd.DataFrame, metadata: dict[str, Any]) -> tuple[pd.DataFrame, str]:
    """Ten rows of ``frame`` with text in a number column at row 7."""
    number = next(c["name"] for c in metadata["signature"] if c["type"] == "number")
    bad = frame[metadata["column_order"]].head(10).astype(object)
    bad.loc[7, number] = "cheap"
    return bad, number


@pytest.mark.slow
@pytest.mark.parametrize(
    "shape", ["arrays", "dataframe_split", "inputs columnar", "oip per column", "oip matrix"]
)
def test_a_bad_cell_in_each_json_shape_is_named_by_row_and_column(
    client: TestClient, frame: pd.DataFrame, metadata: dict[str, Any], shape: str
) -> None:
    bad, number = spoil(frame, metadata)
    bad.loc[4, number] = True  # booleans are not numbers
    reply = post(client, shapes(bad, metadata)[shape])
    if shape.startswith("oip"):
        assert reply.status_code == 400  # the protocol's status for rows that do not fit
        assert reply.json()["error"].startswith(f"row 4, column '{number}': expected a number")
        return
    assert reply.status_code == 422, reply.text
    details = reply.json()["details"]
    assert {"row": 4, "column": number, "error": "expected a number, got True (a boolean)"} in (
        details
    )
    assert {"row": 7, "column": number, "error": "expected a number, got 'cheap'"} in details
    assert all(d["row"] in (4, 7) for d in details)


@pytest.mark.slow
def test_bad_and_missing_csv_cells_are_named_by_row_and_column(
    client: TestClient, frame: pd.DataFrame, metadata: dict[str, Any]
) -> None:
    bad, number = spoil(frame, metadata)
    bad.loc[2, number] = ""  # an empty cell is missing; this column had no nulls in training
    bad.loc[5, number] = " 1.5"  # python's float() reads it; the data contract does not
    bad.loc[6, number] = "1_000"
    text = bad.to_csv(index=False, quoting=1)  # every cell quoted: quotes are not content
    reply = client.post("/score", content=text.encode(), headers={"Content-Type": "text/csv"})
    assert reply.status_code == 422, reply.text
    details = {(d["row"], d["column"]): d["error"] for d in reply.json()["details"]}
    assert details[(2, number)].startswith("missing value not allowed")
    assert details[(5, number)] == "expected a number, got ' 1.5'"
    assert details[(6, number)] == "expected a number, got '1_000'"
    assert details[(7, number)] == "expected a number, got 'cheap'"
    assert set(details) == {(2, number), (5, number), (6, number), (7, number)}


@pytest.mark.slow
def test_quoted_csv_cells_and_missing_markers_read_as_before(
    client: TestClient, frame: pd.DataFrame, metadata: dict[str, Any], want: dict[str, Any]
) -> None:
    body = frame[metadata["column_order"]].to_csv(index=False, quoting=1).encode("utf-8-sig")
    labels, probabilities = answers(
        client.post("/score", content=body, headers={"Content-Type": "text/csv"})
    )
    assert labels == want["predictions"] and probabilities == want["probabilities"]


# -- the column fast paths against the per-cell rules -------------------------------------

NUMBERISH = st.text(alphabet="0123456789+-.eE \x1f_", max_size=6)


@given(st.lists(st.one_of(NUMBERISH, st.none(), st.sampled_from(["nan", "inf", "1e400", ""])),
                min_size=1, max_size=8))  # fmt: skip
def test_number_text_is_read_a_column_at_a_time_as_cell_by_cell(column: list[Any]) -> None:
    values, bad = to_numeric(np.array(column, dtype=object))
    for cell, value, flagged in zip(column, values.tolist(), bad.tolist(), strict=True):
        expected = _number(cell)
        assert flagged == (expected is None), cell
        if expected is not None:
            assert value == expected or (math.isnan(value) and math.isnan(expected)), cell


CELLS = st.one_of(
    st.integers(-(2**63), 2**64 - 1), st.floats(), st.booleans(), st.none(), st.text(max_size=3)
)


@given(st.lists(CELLS, min_size=1, max_size=8))
def test_number_columns_convert_only_when_every_cell_is_a_number(column: list[Any]) -> None:
    fast = cells.numbers(column)
    every_number = all(type(c) in (int, float) for c in column)
    assert (fast is not None) == every_number
    if fast is not None:
        expected = [float(c) for c in column]
        assert all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(
            fast.tolist(), expected, strict=True))  # fmt: skip


def test_csv_text_types_each_distinct_cell_as_text_cells_does() -> None:
    from mlship.scoring.columns import text_cells

    column = ["7.0", "7", "NA", "", "true", "A", "7.0", "1.50", "inf", "A"]
    for kind in ("numeric", "categorical"):
        expected = text_cells(np.array(column, dtype=object), kind).tolist()
        assert cells.csv_text(column, kind).tolist() == expected
