"""The protocol routes in-process on the OJ model: Open Inference Protocol, KServe v1 and
SageMaker's Accept, each scoring like /score."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlship.serving.app import create_app
from mlship.serving.settings import ServeSettings
from tests.conftest import OJ_CSV


@pytest.fixture(scope="module")
def client(trained_oj: Path) -> Iterator[TestClient]:
    settings = ServeSettings(model_dir=trained_oj / "model", sagemaker=True)
    with TestClient(create_app(settings, background_load=False)) as c:
        yield c


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return pd.read_csv(OJ_CSV).drop(columns=["Purchase"]).head(4).to_dict(orient="records")


def reference(client: TestClient, rows: list[dict[str, Any]]) -> dict[str, Any]:
    reply = client.post("/score", json=rows)
    assert reply.status_code == 200
    return reply.json()  # type: ignore[no-any-return]


def test_open_inference_protocol(client: TestClient, rows: list[dict[str, Any]]) -> None:
    want = reference(client, rows)
    meta = client.get("/metadata").json()
    names = [c["name"] for c in meta["signature"]]
    assert client.get("/v2").json()["name"] == "mlship"
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    model = client.get("/v2/models/oj-purchase").json()
    assert [i["name"] for i in model["inputs"]] == names
    assert client.get("/v2/models/oj-purchase/versions/1/ready").status_code == 200
    assert client.get("/v2/models/other").status_code == 404
    assert client.get("/v2/models/oj-purchase/versions/9").status_code == 404
    kinds = {i["name"]: i["datatype"] for i in model["inputs"]}
    body = {
        "id": "r-7",
        "inputs": [
            {"name": n, "shape": [len(rows)], "datatype": kinds[n], "data": [r[n] for r in rows]}
            for n in names
        ],
    }
    reply = client.post("/v2/models/oj-purchase/infer", json=body)
    assert reply.status_code == 200, reply.text
    out = {o["name"]: o for o in reply.json()["outputs"]}
    assert reply.json()["id"] == "r-7"
    assert out["label"]["data"] == want["predictions"]
    classes = out["probabilities"]["parameters"]["classes"]
    flat = [row[c] for row in want["probabilities"] for c in classes]
    assert out["probabilities"]["data"] == pytest.approx(flat, abs=1e-12)
    bad = client.post("/v2/models/oj-purchase/infer", json={"inputs": []})
    assert bad.status_code == 400 and set(bad.json()) == {"error"}
    versioned = client.post("/v2/models/oj-purchase/versions/1/infer", json=body)
    assert versioned.status_code == 200


def test_kserve_v1(client: TestClient, rows: list[dict[str, Any]]) -> None:
    want = reference(client, rows)
    assert client.get("/").status_code == 200
    assert client.get("/v1/models/oj-purchase").json() == {"name": "oj-purchase", "ready": True}
    reply = client.post("/v1/models/oj-purchase:predict", json={"instances": rows})
    assert reply.status_code == 200, reply.text
    assert reply.json()["predictions"] == want["predictions"]
    assert client.post("/v1/models/other:predict", json={"instances": rows}).status_code == 404


def test_sagemaker_headerless_csv_and_accept(
    client: TestClient, rows: list[dict[str, Any]]
) -> None:
    want = reference(client, rows)
    names = [c["name"] for c in client.get("/metadata").json()["signature"]]
    csv = "\n".join(",".join(str(r[n]) for n in names) for r in rows) + "\n"
    as_csv = client.post(
        "/invocations", content=csv, headers={"Content-Type": "text/csv", "Accept": "text/csv"}
    )
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert [line.split(",")[0] for line in as_csv.text.splitlines()] == want["predictions"]
    lines = client.post(
        "/invocations", content=csv,
        headers={"Content-Type": "text/csv", "Accept": "application/jsonlines"},
    )  # fmt: skip
    assert len(lines.text.splitlines()) == len(rows)
    refused = client.post(
        "/invocations", content=csv, headers={"Content-Type": "text/csv", "Accept": "image/png"}
    )
    assert refused.status_code == 406


def test_open_inference_binary_tensors_refused(client: TestClient) -> None:
    """The binary tensor data extension is not offered: a 400 naming the JSON way instead."""
    header = b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": 8}}]}'
    reply = client.post(
        "/v2/models/oj-purchase/infer",
        content=header + b"\x00" * 8,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert reply.status_code == 400
    assert "binary_data=False" in reply.json()["error"]
    assert client.get("/v2").json()["extensions"] == []
