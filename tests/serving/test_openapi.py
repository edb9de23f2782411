"""The typed OpenAPI document, in-process over the session's OJ model.

The document must be a valid OpenAPI 3.1 document (checked against the OpenAPI 3.1 meta-schema
schemathesis ships, since ``openapi-spec-validator`` is not in our lock), name every request
shape, carry the column order (``prefixItems`` and descriptions), list every error status, and
describe what the service really does: each request shape sent to it scores, and each reply
validates against the schema the document gives for its status.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from schemathesis.specs.openapi.definitions import OPENAPI_31

from mlship.model.saved import Column
from mlship.serving.app import create_app
from mlship.serving.openapi_replies import reply_schemas
from mlship.serving.openapi_schemas import Signature, request_schemas
from mlship.serving.settings import ServeSettings
from tests.conftest import OJ_CSV

pytestmark = pytest.mark.slow

SHAPES = ("Record", "ArrayRow", "Records", "ArrayRows", "InstancesRequest", "InputsRequest",
          "ColumnarInputs", "DataframeSplit", "DataframeSplitRequest",
          "DataframeRecordsRequest", "ScoreRequest", "CsvBody", "JsonLinesBody")  # fmt: skip
REPLIES = ("ScoreReply", "Label", "ClassProbabilities", "Error", "ErrorDetail", "Metadata",
           "InferenceRequest", "InferenceReply", "ErrorMessage", "V1PredictReply",
           "V1ModelStatus", "OipModelMetadata")  # fmt: skip


@pytest.fixture(scope="module")
def client(trained_oj: Path) -> Iterator[TestClient]:
    settings = ServeSettings(model_dir=trained_oj / "model", max_rows=100, docs=True)
    with TestClient(create_app(settings, background_load=False)) as c:
        yield c


@pytest.fixture(scope="module")
def spec(client: TestClient) -> dict[str, Any]:
    reply = client.get("/openapi.json")
    assert reply.status_code == 200
    document: dict[str, Any] = reply.json()
    return document


@pytest.fixture(scope="module")
def order(client: TestClient) -> list[str]:
    names: list[str] = client.get("/metadata").json()["column_order"]
    return names


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    frame = pd.read_csv(OJ_CSV).drop(columns=["Purchase", "STORE"]).head(4)
    frame["StoreID"] = frame["StoreID"].astype(str)  # the typed contract: categories are text
    records: list[dict[str, Any]] = frame.to_dict(orient="records")
    return records


def validator(spec: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator for one component, its ``$ref``s resolved inside the document."""
    registry: Registry[Any] = Registry().with_resource(
        "urn:spec", DRAFT202012.create_resource(spec)
    )
    schema = {"$ref": f"urn:spec#/components/schemas/{name}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def conforms(spec: dict[str, Any], name: str, value: Any) -> None:
    errors = [e.message for e in validator(spec, name).iter_errors(value)]
    assert errors == [], f"{name}: {errors[:3]}"


def test_the_document_is_valid_openapi_31(spec: dict[str, Any]) -> None:
    meta = jsonschema.Draft202012Validator(OPENAPI_31)
    assert [e.message for e in meta.iter_errors(spec)] == []
    for schema in spec["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    broken = copy.deepcopy(spec)
    broken["paths"]["/score"]["post"]["responses"]["200"] = {"content": {}}  # no description
    assert list(meta.iter_errors(broken)), "the meta-schema check can fail"


def test_every_shape_and_reply_is_a_named_component(spec: dict[str, Any]) -> None:
    assert set(SHAPES) | set(REPLIES) <= set(spec["components"]["schemas"])
    post = spec["paths"]["/score"]["post"]
    content = post["requestBody"]["content"]
    assert post["requestBody"]["required"] is True
    assert content["application/json"]["schema"]["$ref"].endswith("/ScoreRequest")
    assert content["text/csv"]["schema"]["$ref"].endswith("/CsvBody")
    assert content["application/jsonlines"]["schema"]["$ref"].endswith("/JsonLinesBody")
    union = spec["components"]["schemas"]["ScoreRequest"]["anyOf"]
    assert {u["$ref"].rsplit("/", 1)[1] for u in union} == {
        "Records", "ArrayRows", "InstancesRequest", "InputsRequest", "DataframeSplitRequest",
        "DataframeRecordsRequest"}  # fmt: skip


def test_records_are_typed_by_the_signature(spec: dict[str, Any], client: TestClient) -> None:
    signature = client.get("/metadata").json()["signature"]
    record = spec["components"]["schemas"]["Record"]
    assert record["required"] == [c["name"] for c in signature]
    assert record["additionalProperties"] is False  # --extra-columns reject
    for column in signature:
        prop = record["properties"][column["name"]]
        assert prop["type"] == column["type"]  # "number" or "string", none nullable in OJ
        assert prop["title"] == column["name"]
    assert {"Purchase", "STORE"} <= set(record["properties"]), "unused columns: ignored"
    assert "Purchase" not in record["required"]


def test_array_rows_carry_the_column_order(spec: dict[str, Any], order: list[str]) -> None:
    schemas = spec["components"]["schemas"]
    row = schemas["ArrayRow"]
    assert [item["title"] for item in row["prefixItems"]] == order
    assert row["minItems"] == row["maxItems"] == len(order)
    listed = ", ".join(f"{i}: {name}" for i, name in enumerate(order))
    for name in ("ArrayRow", "ArrayRows", "CsvBody", "ScoreRequest", "InferenceRequest"):
        assert listed in schemas[name]["description"], name
    assert listed in spec["info"]["description"]  # the top of /docs
    assert schemas["Records"]["maxItems"] == 100  # max_rows


def test_the_reply_names_the_classes(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["Label"]["enum"] == ["CH", "MM"]
    assert schemas["ClassProbabilities"]["required"] == ["CH", "MM"]
    assert schemas["ScoreReply"]["required"] == ["predictions", "model", "probabilities"]


def test_every_error_status_is_documented(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    score = paths["/score"]["post"]["responses"]
    assert {"200", "400", "413", "415", "422", "503"} <= set(score)
    assert "401" not in score, "no API keys, no 401"
    for status in ("400", "413", "415", "422", "503"):
        assert score[status]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    infer = paths["/v2/models/{name}/infer"]["post"]["responses"]
    assert {"200", "400", "404", "413", "415", "503"} <= set(infer)
    assert infer["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorMessage")
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert paths["/v1/models/{name}:predict"]["post"]["requestBody"]["required"] is True
    assert "/v2/models/{name}/versions/{version}/infer" in paths
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_api_keys_add_401_403_and_a_security_scheme(trained_oj: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("secret\n")
    settings = ServeSettings(model_dir=trained_oj / "model", api_keys_file=keys)
    with TestClient(create_app(settings, background_load=False)) as c:
        doc = c.get("/openapi.json", headers={"X-API-Key": "secret"}).json()
    assert {"401", "403"} <= set(doc["paths"]["/score"]["post"]["responses"])
    assert doc["paths"]["/ready"]["get"]["security"] == []  # the probes stay open
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKey"}


def test_every_request_shape_scores_and_replies_as_documented(
    spec: dict[str, Any], client: TestClient, rows: list[dict[str, Any]], order: list[str]
) -> None:
    arrays = [[r[c] for c in order] for r in rows]
    shapes = {
        "Records": rows,
        "ArrayRows": arrays,
        "InstancesRequest": {"instances": rows, "parameters": {}},
        "InputsRequest": {"inputs": {c: [r[c] for r in rows] for c in order}},
        "DataframeSplitRequest": {"dataframe_split": {"columns": order, "data": arrays}},
        "DataframeRecordsRequest": {"dataframe_records": rows, "params": {}},
    }
    expected = client.post("/score", json=rows).json()
    for name, body in shapes.items():
        conforms(spec, name, body)
        conforms(spec, "ScoreRequest", body)
        reply = client.post("/score", json=body)
        assert reply.status_code == 200, (name, reply.text)
        conforms(spec, "ScoreReply", reply.json())
        assert reply.json()["predictions"] == expected["predictions"], name
    csv = pd.DataFrame(arrays).to_csv(index=False, header=False)
    reply = client.post("/score", content=csv, headers={"Content-Type": "text/csv"})
    assert reply.json()["predictions"] == expected["predictions"]


def test_unused_training_columns_conform_where_the_server_takes_them(
    spec: dict[str, Any], client: TestClient, rows: list[dict[str, Any]], order: list[str]
) -> None:
    """The target and dropped columns score in every shape, and the document says so."""
    unused = pd.read_csv(OJ_CSV).head(len(rows))[["Purchase", "STORE"]]
    table = pd.concat([pd.DataFrame(rows)[order], unused], axis=1)
    names = list(table.columns)
    bodies = {
        "InputsRequest": {"inputs": {c: table[c].tolist() for c in names}},
        "DataframeSplitRequest": {
            "dataframe_split": {"columns": names, "data": table.to_numpy().tolist()}
        },
    }
    for name, body in bodies.items():
        assert client.post("/score", json=body).status_code == 200, name
        conforms(spec, name, body)


def test_error_replies_match_their_schemas(
    spec: dict[str, Any], client: TestClient, rows: list[dict[str, Any]]
) -> None:
    bad = [rows[0], {**rows[1], "PriceCH": "cheap"}]
    reply = client.post("/score", json=bad)
    assert reply.status_code == 422
    conforms(spec, "Error", reply.json())
    assert reply.json()["details"][0]["row"] == 1  # rows from 0: the second row
    for status, body, kind in ((400, b"{", "application/json"), (415, b"x", "text/plain")):
        reply = client.post("/score", content=body, headers={"Content-Type": kind})
        assert reply.status_code == status
        conforms(spec, "Error", reply.json())
    missing = client.post("/v2/models/nope/infer", json={"inputs": []})
    assert missing.status_code == 404
    conforms(spec, "ErrorMessage", missing.json())


def test_protocol_replies_match_their_schemas(
    spec: dict[str, Any], client: TestClient, rows: list[dict[str, Any]], order: list[str]
) -> None:
    name = client.get("/metadata").json()["name"]
    tensor = {"name": "x", "shape": [len(rows), len(order)], "datatype": "BYTES",
              "data": [[r[c] for c in order] for r in rows]}  # fmt: skip
    request = {"id": "a", "inputs": [tensor]}
    conforms(spec, "InferenceRequest", request)
    infer = client.post(f"/v2/models/{name}/infer", json=request)
    assert infer.status_code == 200, infer.text
    conforms(spec, "InferenceReply", infer.json())
    conforms(spec, "OipModelMetadata", client.get(f"/v2/models/{name}").json())
    predict = client.post(f"/v1/models/{name}:predict", json={"instances": rows})
    conforms(spec, "V1PredictReply", predict.json())
    conforms(spec, "V1ModelStatus", client.get(f"/v1/models/{name}").json())


def test_metadata_names_each_platforms_routes(
    spec: dict[str, Any], client: TestClient, order: list[str]
) -> None:
    meta = client.get("/metadata").json()
    conforms(spec, "Metadata", meta)
    assert order == [c["name"] for c in meta["signature"]]
    assert meta["error_rows_start_at"] == 0
    oip = meta["protocols"]["open_inference"]
    assert oip["model_name"] == meta["name"] and oip["model_version"] == meta["version"]
    assert client.post(oip["infer"], json={"inputs": [{"name": "x", "shape": [1, len(order)],
                       "datatype": "BYTES", "data": [list(order)]}]}).status_code == 400  # fmt: skip
    v1 = meta["protocols"]["kserve_v1"]
    assert client.get(v1["model_status"]).json()["ready"] is True
    assert meta["protocols"]["sagemaker"] is None and meta["protocols"]["vertex"] is None
    assert meta["protocols"]["native"]["docs"] == "/docs"


def test_docs_load_the_typed_document(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text


def test_platform_routes_are_documented_where_they_are(
    trained_oj: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIP_HTTP_PORT", "8080")
    monkeypatch.setenv("AIP_PREDICT_ROUTE", "/v1/endpoints/e/deployedModels/m:predict")
    monkeypatch.setenv("AIP_HEALTH_ROUTE", "/v1/endpoints/e/deployedModels/m")
    settings = ServeSettings(model_dir=trained_oj / "model")
    with TestClient(create_app(settings, background_load=False)) as c:
        paths = c.get("/openapi.json").json()["paths"]
        vertex = c.get("/metadata").json()["protocols"]["vertex"]
    predict = paths["/v1/endpoints/e/deployedModels/m:predict"]["post"]
    assert predict["operationId"] == "vertex_predict" and "requestBody" in predict
    assert paths["/v1/endpoints/e/deployedModels/m"]["get"]["operationId"] == "vertex_health"
    assert vertex == {"predict": "/v1/endpoints/e/deployedModels/m:predict",
                      "health": "/v1/endpoints/e/deployedModels/m"}  # fmt: skip
    sagemaker = ServeSettings(model_dir=trained_oj / "model", sagemaker=True)
    with TestClient(create_app(sagemaker, background_load=False)) as c:
        paths = c.get("/openapi.json").json()["paths"]
    replies = paths["/invocations"]["post"]["responses"]["200"]["content"]
    assert set(replies) == {"application/json", "text/csv", "application/jsonlines"}
    assert paths["/ping"]["get"]["operationId"] == "sagemaker_ping"


def test_while_loading_the_document_is_untyped_and_not_kept(trained_oj: Path) -> None:
    app = create_app(ServeSettings(model_dir=trained_oj / "model"))  # lifespan not run: loading
    document = app.openapi()
    assert app.openapi_schema is None
    assert "properties" not in document["components"]["schemas"]["Record"]


def test_nullable_columns_and_regressors() -> None:
    columns = [Column("x", "numeric", True), Column("s", "categorical", False)]
    sig = Signature(columns, [], False, [], True, 10)
    record = request_schemas(sig)["Record"]
    assert record["properties"]["x"]["type"] == ["number", "null"]
    assert record["properties"]["s"]["type"] == "string"
    assert record["required"] == ["x", "s"], "a nullable field may be null, not absent"
    replies = reply_schemas(sig)
    assert replies["Label"]["type"] == "number"
    assert replies["ScoreReply"]["required"] == ["predictions", "model"]
