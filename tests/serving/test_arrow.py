"""Arrow IPC in and out of ``/score``, with pyarrow as the client, and a server without it.

The round trip scores every OJ row and must answer exactly as the records body does. Column
types are checked against the signature (a string column where numbers belong is a 422 naming
it); cell problems (nulls where training had none) are named by row and column as in JSON.

Without pyarrow: a child interpreter whose import system refuses ``pyarrow`` (a meta path
finder installed before mlship is imported, so nothing can load it) runs the service in
process; Arrow bodies must be a 415 and Arrow replies a 406, each saying why, and the
OpenAPI document and ``/metadata`` must say Arrow is not there. That simulates an image
without pyarrow (the ONNX image); the real image is covered by the packaging tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
ARROW = "application/vnd.apache.arrow.stream"


@pytest.fixture(scope="module")
def metadata(client: TestClient) -> dict[str, Any]:
    data: dict[str, Any] = client.get("/metadata").json()
    return data


@pytest.fixture(scope="module")
def want(client: TestClient, frame: pd.DataFrame) -> dict[str, Any]:
    reply = client.post("/score", json=frame.to_dict(orient="records"))
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def stream(table: pa.Table, chunk: int | None = None) -> bytes:
    """``table`` as an IPC stream (in batches of ``chunk`` rows when given)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=chunk)
    out: bytes = sink.getvalue().to_pybytes()
    return out


def read(reply: Any) -> pa.Table:
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == ARROW
    return pa.ipc.open_stream(reply.content).read_all()


def test_arrow_in_and_out_scores_every_row_exactly_as_records(
    client: TestClient, frame: pd.DataFrame, metadata: dict[str, Any], want: dict[str, Any]
) -> None:
    body = stream(pa.Table.from_pandas(frame, preserve_index=False), chunk=300)  # 4 batches
    table = read(client.post("/score", content=body, headers={"Content-Type": ARROW,
                                                                "Accept": ARROW}))  # fmt: skip
    classes = metadata["classes"]
    assert table.column_names == ["prediction", *(f"proba_{c}" for c in classes)]
    assert table.schema.field("prediction").type == pa.string()
    assert table.column("prediction").to_pylist() == want["predictions"]
    for name in classes:
        assert table.column(f"proba_{name}").to_pylist() == [p[name] for p in want["probabilities"]]
    identity = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    assert identity["model_name"] == want["model"]["name"]
    assert identity["model_version"] == want["model"]["version"]


def test_an_arrow_body_gets_json_and_a_json_body_gets_arrow_when_asked(
    client: TestClient, frame: pd.DataFrame, want: dict[str, Any]
) -> None:
    body = stream(pa.Table.from_pandas(frame, preserve_index=False))
    reply = client.post("/score", content=body, headers={"Content-Type": ARROW})
    assert reply.status_code == 200 and reply.json()["predictions"] == want["predictions"]
    table = read(client.post("/score?format=arrow", json=frame.to_dict(orient="records")))
    assert table.column("prediction").to_pylist() == want["predictions"]


def test_arrow_types_are_checked_against_the_signature(
    client: TestClient, frame: pd.DataFrame, metadata: dict[str, Any]
) -> None:
    number = next(c["name"] for c in metadata["signature"] if c["type"] == "number")
    table = pa.Table.from_pandas(frame.head(5), preserve_index=False)
    as_text = table.set_column(
        table.column_names.index(number), number, pa.array(["1.5"] * 5, pa.string())
    )
    reply = client.post("/score", content=stream(as_text), headers={"Content-Type": ARROW})
    assert reply.status_code == 422, reply.text
    (detail,) = reply.json()["details"]
    assert detail["column"] == number and "row" not in detail
    assert detail["error"] == "expected a number column (integer or floating point), got " + (
        "Arrow type string"
    )


def null_at(
    client: TestClient, head: pa.Table, column: str, row: int, kind: Any = None
) -> list[dict[str, Any]]:
    """The 422 details for ``head`` with ``column`` null at ``row``."""
    values = head.column(column).to_pylist()
    values[row] = None
    holes = head.set_column(head.column_names.index(column), column, pa.array(values, kind))
    reply = client.post("/score", content=stream(holes), headers={"Content-Type": ARROW})
    assert reply.status_code == 422, reply.text
    details: list[dict[str, Any]] = reply.json()["details"]
    return details


def test_arrow_nulls_and_integers_are_read_cell_by_cell(
    client: TestClient, frame: pd.DataFrame, metadata: dict[str, Any], want: dict[str, Any]
) -> None:
    number = next(c["name"] for c in metadata["signature"] if c["type"] == "number")
    head = pa.Table.from_pandas(frame.head(6), preserve_index=False)
    error = "missing value not allowed (this column had none in training)"
    assert null_at(client, head, number, 4) == [{"row": 4, "column": number, "error": error}]
    store = "StoreID"  # a category of integers: Arrow writes their text, a null is missing
    assert head.schema.field(store).type == pa.int64()
    assert null_at(client, head, store, 0, pa.int64()) == [
        {"row": 0, "column": store, "error": error}
    ]
    week = "WeekofPurchase"  # integers in the CSV: an int64 Arrow column
    assert head.schema.field(week).type == pa.int64()
    reply = client.post("/score", content=stream(head), headers={"Content-Type": ARROW})
    assert reply.json()["predictions"] == want["predictions"][:6]


def test_bad_arrow_bodies_are_400s_and_unknown_columns_422s(
    client: TestClient, frame: pd.DataFrame
) -> None:
    bad = client.post("/score", content=b"not arrow", headers={"Content-Type": ARROW})
    assert bad.status_code == 400 and "malformed Arrow IPC stream" in bad.json()["error"]
    empty = pa.Table.from_pandas(frame.head(0), preserve_index=False)
    none = client.post("/score", content=stream(empty), headers={"Content-Type": ARROW})
    assert none.status_code == 400 and none.json()["error"] == "no rows to score"
    extra = pa.Table.from_pandas(frame.head(2).assign(colour="red"), preserve_index=False)
    reply = client.post("/score", content=stream(extra), headers={"Content-Type": ARROW})
    assert reply.status_code == 422
    assert reply.json()["details"] == [{"column": "colour", "error": "unknown column"}]


def test_openapi_and_metadata_say_arrow_is_available(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    score = doc["paths"]["/score"]["post"]
    assert ARROW in score["requestBody"]["content"]
    assert ARROW in score["responses"]["200"]["content"]
    assert any(p["name"] == "format" for p in score["parameters"])
    native = client.get("/metadata").json()["protocols"]["native"]
    assert native["arrow"] is True and native["reply_formats"] == ["records", "columnar", "arrow"]


CHILD = textwrap.dedent(
    """
    import json, sys
    from importlib.abc import MetaPathFinder

    class NoPyarrow(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "pyarrow" or name.startswith("pyarrow."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, NoPyarrow())
    from fastapi.testclient import TestClient
    from mlship.serving.app import create_app
    from mlship.serving.settings import ServeSettings

    model, body = sys.argv[1], open(sys.argv[2], "rb").read()
    settings = ServeSettings(model_dir=model)
    out = {}
    with TestClient(create_app(settings, background_load=False)) as client:
        arrow = "application/vnd.apache.arrow.stream"
        reply = client.post("/score", content=body, headers={"Content-Type": arrow})
        out["body"] = [reply.status_code, reply.json()]
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        reply = client.post("/score", content=b"a=1", headers=form)
        out["form"] = [reply.status_code, reply.json()]
        reply = client.post("/score", content=b"[]", headers={"Accept": arrow})
        out["accept"] = [reply.status_code, reply.json()]
        reply = client.post("/score?format=arrow", content=b"[]")
        out["query"] = [reply.status_code, reply.json()]
        rows = json.dumps([json.loads(r) for r in sys.argv[3:]]).encode()
        fallback = {"Accept": f"{arrow}, application/json;q=0.5"}
        reply = client.post("/score", content=rows, headers=fallback)
        out["fallback"] = [reply.status_code, reply.headers["content-type"], reply.json()]
        score = client.get("/openapi.json").json()["paths"]["/score"]["post"]
        out["openapi"] = [arrow in score["requestBody"]["content"],
                          arrow in score["responses"]["200"]["content"]]
        out["metadata"] = client.get("/metadata").json()["protocols"]["native"]
    out["loaded"] = "pyarrow" in sys.modules
    print(json.dumps(out))
    """
)


def test_without_pyarrow_arrow_bodies_are_415_and_replies_406(
    trained_oj: Path, frame: pd.DataFrame, tmp_path: Path
) -> None:
    body = tmp_path / "rows.arrows"
    body.write_bytes(stream(pa.Table.from_pandas(frame.head(3), preserve_index=False)))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(trained_oj / "model"), str(body),
         *frame.head(2).to_json(orient="records", lines=True).splitlines()],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    status, reply = out["body"]
    assert status == 415
    assert reply["error"].startswith("Arrow bodies: this server has no pyarrow")
    status, reply = out["form"]  # the 415 lists only what this server accepts
    assert status == 415 and "arrow" not in reply["error"]
    assert reply["error"].endswith("send application/json, text/csv or application/jsonlines")
    for key in ("accept", "query"):
        status, reply = out[key]
        assert status == 406, key
        assert reply["error"].startswith("Arrow replies: this server has no pyarrow")
    status, kind, reply = out["fallback"]  # Arrow preferred, JSON accepted: JSON it is
    assert (status, kind) == (200, "application/json")
    assert len(reply["predictions"]) == 2
    assert out["openapi"] == [False, False]
    assert out["metadata"]["arrow"] is False
    assert out["metadata"]["reply_formats"] == ["records", "columnar"]
    assert out["loaded"] is False
