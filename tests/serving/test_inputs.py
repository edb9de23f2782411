"""Issue 10's input defects against the real OJ model, both runtimes, in-process HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlship.serving.app import create_app
from mlship.serving.settings import ServeSettings
from tests.batch.conftest import run_batch
from tests.conftest import OJ_CSV, ROOT


@pytest.fixture(scope="module", params=["onnx", "sklearn"])
def client(trained_oj: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    settings = ServeSettings(model_dir=trained_oj / "model", runtime=request.param)
    with TestClient(create_app(settings, background_load=False)) as c:
        yield c


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.read_csv(OJ_CSV)


def features(table: pd.DataFrame) -> list[dict[str, Any]]:
    return table.drop(columns=["Purchase", "STORE"]).head(5).to_dict(orient="records")


def test_rows_of_the_training_table_score_as_they_are(
    client: TestClient, table: pd.DataFrame
) -> None:
    """The target and the dropped STORE column are ignored, not 'unknown'."""
    whole = client.post("/score", json=table.head(5).to_dict(orient="records"))
    assert whole.status_code == 200, whole.text
    plain = client.post("/score", json=features(table))
    assert whole.json()["probabilities"] == plain.json()["probabilities"]
    csv = client.post(
        "/score", content=table.head(5).to_csv(index=False), headers={"Content-Type": "text/csv"}
    )
    assert csv.status_code == 200, csv.text
    unknown = client.post("/score", json=[{**features(table)[0], "Colour": "red"}])
    assert unknown.status_code == 422


@pytest.mark.parametrize(
    "value", [True, False, "1_000", "\u0662\u0663\u0667", "\uff12\uff13\uff17", " 0.9 "]
)
def test_what_is_not_a_number_is_a_422(
    client: TestClient, table: pd.DataFrame, value: object
) -> None:
    rows = features(table)
    reply = client.post("/score", json=[rows[0], {**rows[1], "PriceCH": value}])
    assert reply.status_code == 422, reply.text
    assert reply.json()["details"] == [
        {"row": 1, "column": "PriceCH", "error": reply.json()["details"][0]["error"]}
    ]
    assert reply.json()["details"][0]["error"].startswith("expected a number")


def test_deep_nesting_is_a_422_not_a_500(client: TestClient, table: pd.DataFrame) -> None:
    row = pd.Series(features(table)[0]).to_json()
    deep = "[" * 1000 + "1.75" + "]" * 1000
    body = "[" + row.replace('"PriceCH":1.75', f'"PriceCH":{deep}') + "]"
    assert deep in body
    reply = client.post("/score", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 422, reply.text[:300]
    assert len(reply.text) < 1000


def test_junk_beside_instances_is_a_400(client: TestClient, table: pd.DataFrame) -> None:
    reply = client.post("/score", json={"instances": features(table), "junk": 1})
    assert reply.status_code == 400 and "unknown key 'junk'" in reply.json()["error"]


def test_values_near_float32s_limit_score_in_float64_and_a_float32_twin_refuses_them(
    client: TestClient, table: pd.DataFrame
) -> None:
    """Opposite values near float32's limit: both of today's runtimes compute in float64 and
    answer; the float32 twin of a 0.1.0 model dir would answer NaN, so that row is a 422."""
    from mlship.scoring.predictor import Predictor
    from mlship.scoring.problems import InputError

    rows = features(table)
    extreme = {**rows[1], "PriceCH": 3e38, "LoyalCH": 3e38}
    reply = client.post("/score", json=[rows[0], extreme])
    assert reply.status_code == 200, reply.text
    probabilities = reply.json()["probabilities"]
    assert all(p is not None for row in probabilities for p in row.values())
    legacy = Predictor.load(ROOT / "tests" / "fixtures" / "model-v0", runtime="onnx")
    frame = pd.DataFrame([rows[0], extreme])
    with pytest.raises(InputError, match="no finite score") as caught:
        legacy.predict_frame(frame)
    assert [p.row for p in caught.value.problems] == [1]


def test_batch_csv_applies_the_same_number_rule(tmp_path: Path, trained_oj: Path) -> None:
    from mlship.scoring.predictor import Predictor
    from mlship.scoring.problems import InputError

    text = OJ_CSV.read_text().splitlines()
    header = text[0].split(",")
    column = header.index("WeekofPurchase")
    cells = text[3].split(",")
    cells[column] = '"1_000"'
    source = tmp_path / "in.csv"
    source.write_text("\n".join([text[0], text[1], text[2], ",".join(cells)]) + "\n")
    predictor = Predictor.load(trained_oj / "model")
    with pytest.raises(InputError, match="line 4, column 'WeekofPurchase': expected a number"):
        run_batch(predictor, str(source), str(tmp_path / "out.parquet"))


def test_serving_can_pin_the_manifest_digest(trained_oj: Path) -> None:
    """--model-sha256 / MLSHIP_MODEL_SHA256: the registry's digest, or /ready stays 503."""
    from mlship.model.manifest import read_manifest

    model = trained_oj / "model"
    digest = read_manifest(model).sha256
    good = ServeSettings(model_dir=model, model_sha256=digest)
    with TestClient(create_app(good, background_load=False)) as pinned:
        assert pinned.get("/ready").status_code == 200
        assert pinned.get("/metadata").json()["manifest_sha256"] == digest
    wrong = ServeSettings(model_dir=model, model_sha256="0" * 64)
    with TestClient(create_app(wrong, background_load=False)) as refused:
        reply = refused.get("/ready")
        assert reply.status_code == 503 and "pinned" in reply.json()["error"]
