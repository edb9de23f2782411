"""The HTTP contract in-process: every accepted payload shape, every bad-input class."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlship.scoring.predictor import Predictor
from mlship.serving import inline
from mlship.serving.app import Service, create_app
from mlship.serving.settings import ServeSettings
from tests.conftest import OJ_CSV

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    frame = pd.read_csv(OJ_CSV).drop(columns=["Purchase", "STORE"]).head(5)
    return frame.to_dict(orient="records")


PLATFORM_VARIABLES = (
    "PORT", "AIP_HTTP_PORT", "AIP_PREDICT_ROUTE", "AIP_HEALTH_ROUTE", "SAGEMAKER_BIND_TO_PORT",
)  # fmt: skip


def platform(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Exactly ``env`` of the platform variables, as a container on that platform sees them."""
    for name in PLATFORM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def make_client(model_dir: Path, **options: Any) -> TestClient:
    app = create_app(ServeSettings(model_dir=model_dir, **options), background_load=False)
    return TestClient(app)


@pytest.fixture(scope="module")
def client(trained_oj: Path) -> Iterator[TestClient]:
    with make_client(trained_oj / "model", max_rows=100, max_body_bytes=200_000) as c:
        yield c


def check_scores(reply: Any, n: int) -> None:
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert len(body["predictions"]) == n
    assert set(body["predictions"]) <= {"CH", "MM"}
    for probs in body["probabilities"]:
        assert set(probs) == {"CH", "MM"}
        assert probs["CH"] + probs["MM"] == pytest.approx(1.0)
    assert body["model"]["name"] == "oj-purchase" and body["model"]["version"] == "1"


def test_records(client: TestClient, rows: list[dict[str, Any]]) -> None:
    check_scores(client.post("/score", json=rows), 5)


def test_every_shape_gives_the_same_answer(client: TestClient, rows: list[dict[str, Any]]) -> None:
    columns = client.get("/metadata").json()["signature"]
    names = [c["name"] for c in columns]
    arrays = [[r[n] for n in names] for r in rows]
    csv = pd.DataFrame(rows).to_csv(index=False)
    replies = [
        client.post("/score", json=rows),
        client.post("/score", json=arrays),
        client.post("/score", json={"instances": rows}),
        client.post("/score", json={"instances": arrays}),
        client.post("/score", json={"dataframe_records": rows}),
        client.post("/score", json={"dataframe_split": {"columns": names, "data": arrays}}),
        client.post("/score", content=csv, headers={"Content-Type": "text/csv"}),
    ]
    first = replies[0].json()
    for reply in replies:
        check_scores(reply, 5)
        got = [p["MM"] for p in reply.json()["probabilities"]]
        assert got == pytest.approx([p["MM"] for p in first["probabilities"]], abs=1e-12)


def test_numbers_for_categories_and_strings_for_numbers_are_coerced(
    client: TestClient, rows: list[dict[str, Any]]
) -> None:
    row = dict(rows[0])
    as_text = {**row, "StoreID": str(row["StoreID"]), "PriceCH": str(row["PriceCH"])}
    as_float = {**row, "StoreID": float(row["StoreID"])}
    replies = [client.post("/score", json=[r]).json() for r in (row, as_text, as_float)]
    assert replies[0]["probabilities"] == replies[1]["probabilities"] == replies[2]["probabilities"]


def error(reply: Any, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error", "details"} and body["error"]
    return body


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        (b"[{bad json", 400, "malformed JSON"),
        (b'[{"Store7": "\xff"}]', 400, "malformed JSON: not UTF-8 text (byte 13)"),
        (b"", 400, "empty body"),
        (b"[]", 400, "no rows"),
        (b'{"rows": []}', 400, "exactly one of instances"),
        (b"[1, 2]", 400, "row 0: expected an object"),
        (b'"text"', 400, "JSON array"),
    ],
)
def test_malformed_bodies(client: TestClient, payload: bytes, status: int, needle: str) -> None:
    body = error(
        client.post("/score", content=payload, headers={"Content-Type": "application/json"}), status
    )
    assert needle in body["error"]


def test_missing_unknown_wrong_type_and_null(
    client: TestClient, rows: list[dict[str, Any]]
) -> None:
    missing = [{k: v for k, v in rows[0].items() if k != "LoyalCH"}]
    body = error(client.post("/score", json=missing), 422)
    assert body["details"][0] == {
        "row": 0,
        "column": "LoyalCH",
        "error": "required field is missing",
    }

    unknown = [{**rows[0], "Colour": "red"}]
    body = error(client.post("/score", json=unknown), 422)
    assert body["details"] == [{"row": 0, "column": "Colour", "error": "unknown column"}]

    wrong = [rows[0], {**rows[1], "PriceCH": "cheap"}]
    body = error(client.post("/score", json=wrong), 422)
    assert body["details"] == [
        {"row": 1, "column": "PriceCH", "error": "expected a number, got 'cheap'"}
    ]
    assert "row 1" in body["error"] and "PriceCH" in body["error"]

    null = [{**rows[0], "LoyalCH": None}, {**rows[1], "Store7": None}]
    body = error(client.post("/score", json=null), 422)
    assert [(d["row"], d["column"]) for d in body["details"]] == [(0, "LoyalCH"), (1, "Store7")]

    nested = [{**rows[0], "Store7": {"a": 1}}]
    assert error(client.post("/score", json=nested), 422)["details"][0]["column"] == "Store7"


def test_limits(client: TestClient, rows: list[dict[str, Any]]) -> None:
    too_many = error(client.post("/score", json=rows * 21), 413)
    assert "max_rows=100" in too_many["error"]
    huge = b"[" + b" " * 250_000 + b"]"
    assert (
        "exceeds"
        in error(
            client.post("/score", content=huge, headers={"Content-Type": "application/json"}), 413
        )["error"]
    )


def test_wrong_content_type_and_route(client: TestClient) -> None:
    body = error(
        client.post(
            "/score", content=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
        ),
        415,
    )
    assert "application/json" in body["error"]
    assert error(client.get("/score"), 405) and client.get("/score").headers["allow"] == "POST"
    error(client.get("/nope"), 404)


def test_service_keeps_serving_after_errors(client: TestClient, rows: list[dict[str, Any]]) -> None:
    for bad in (b"{", b"[]", b"[1]"):
        client.post("/score", content=bad, headers={"Content-Type": "application/json"})
    check_scores(client.post("/score", json=rows), 5)


def test_health_ready_metadata_metrics(client: TestClient, rows: list[dict[str, Any]]) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    meta = client.get("/metadata").json()
    assert meta["classes"] == ["CH", "MM"] and meta["task"] == "classification"
    assert meta["metrics"]["roc_auc"] >= 0.85 and meta["runtime"] == "onnx"
    assert {"name": "LoyalCH", "type": "number", "nullable": False} in meta["signature"]
    before = client.get("/metrics").text
    client.post("/score", json=rows)
    client.post("/score", content=b"{", headers={"Content-Type": "application/json"})
    after = client.get("/metrics").text

    def value(text: str, series: str) -> float:
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return 0.0

    ok = 'mlship_requests_total{route="/score",status="200"}'
    bad = 'mlship_errors_total{route="/score",status="400"}'
    assert value(after, ok) == value(before, ok) + 1
    assert value(after, bad) == value(before, bad) + 1
    assert value(after, "mlship_rows_scored_total") == value(before, "mlship_rows_scored_total") + 5
    assert "mlship_request_seconds_bucket" in after
    assert client.get("/docs").status_code == 404  # off unless --docs: no CDN assets
    assert client.get("/openapi.json").status_code == 200


def test_ready_is_503_while_loading_then_200(
    trained_oj: Path, rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model loads in the background; liveness answers and readiness says so meanwhile."""
    release = threading.Event()
    original = Predictor.load

    def slow_load(*args: Any, **kwargs: Any) -> Predictor:
        assert release.wait(30)
        return original(*args, **kwargs)

    monkeypatch.setattr(Predictor, "load", slow_load)
    app = create_app(ServeSettings(model_dir=trained_oj / "model"), background_load=True)
    with TestClient(app) as loading:
        assert loading.get("/health").status_code == 200
        reply = loading.get("/ready")
        assert reply.status_code == 503 and reply.json()["error"] == "model is loading"
        assert loading.post("/score", json=rows).status_code == 503
        release.set()
        assert app.state.service.holder.loaded.wait(30)
        assert loading.get("/ready").status_code == 200
        check_scores(loading.post("/score", json=rows), 5)


def test_ready_is_503_when_load_fails(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors: {sklearn: {pickled_model: model.pkl}}\n")
    with make_client(tmp_path) as broken:
        assert broken.get("/health").status_code == 200
        reply = broken.get("/ready")
        assert reply.status_code == 503 and "failed to load" in reply.json()["error"]
        assert broken.post("/score", json=[{"a": 1}]).status_code == 503


def test_vertex_contract(
    trained_oj: Path, rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "AIP_HTTP_PORT": "7080",
        "AIP_PREDICT_ROUTE": "/v1/models/oj:predict",
        "AIP_HEALTH_ROUTE": "/v1/models/oj",
        "PORT": "9000",  # Vertex's own variable wins over a generic PORT
    }
    platform(monkeypatch, env)
    options = ServeSettings(model_dir=trained_oj / "model")
    assert options.listen_port == 7080
    with TestClient(create_app(options, background_load=False)) as vertex:
        assert vertex.get("/v1/models/oj").status_code == 200
        reply = vertex.post("/v1/models/oj:predict", json={"instances": rows[:2]})
        assert reply.status_code == 200, reply.text
        predictions = reply.json()["predictions"]
        assert len(predictions) == 2 and set(predictions[0]) == {"label", "probabilities"}


def test_sagemaker_and_port_contracts(
    trained_oj: Path, rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = trained_oj / "model"
    platform(monkeypatch, {"PORT": "9000"})
    assert ServeSettings(model_dir=model).listen_port == 9000
    assert ServeSettings(model_dir=model, port=7000).listen_port == 7000  # a flag beats PORT
    monkeypatch.setenv("MLSHIP_PORT", "7100")
    assert ServeSettings(model_dir=model).listen_port == 7100  # ours beat the platform's
    assert ServeSettings(model_dir=model, port=7000).listen_port == 7000
    monkeypatch.delenv("MLSHIP_PORT")
    platform(monkeypatch, {})
    assert ServeSettings(model_dir=model).listen_port == 8888
    platform(monkeypatch, {"PORT": "9000"})
    options = ServeSettings(model_dir=model, sagemaker=True)
    assert options.listen_port == 8080
    platform(monkeypatch, {"SAGEMAKER_BIND_TO_PORT": "8085", "PORT": "9000"})
    assert ServeSettings(model_dir=model, sagemaker=True).listen_port == 8085
    with TestClient(create_app(options, background_load=False)) as sagemaker:
        assert sagemaker.get("/ping").status_code == 200
        reply = sagemaker.post(
            "/invocations", content=json.dumps(rows), headers={"Content-Type": "application/json"}
        )
        assert reply.status_code == 200 and len(reply.json()["predictions"]) == 5


def test_review_findings_are_4xx_not_500_or_silent(
    client: TestClient, rows: list[dict[str, Any]]
) -> None:
    names = [c["name"] for c in client.get("/metadata").json()["signature"]]
    values = [[rows[0][n] for n in names]]
    odd = client.post(
        "/score", json={"dataframe_split": {"columns": [[1], *names[1:]], "data": values}}
    )
    assert odd.status_code == 400 and "must be strings" in odd.json()["error"]
    twice = {"dataframe_split": {"columns": [*names, "PriceCH"], "data": [[*values[0], 9.9]]}}
    reply = client.post("/score", json=twice)
    assert reply.status_code == 400 and "duplicate column 'PriceCH'" in reply.json()["error"]
    huge = client.post("/score", json=[{**rows[0], "PriceCH": 1e39}])
    assert huge.status_code == 422 and "out of range" in huge.json()["details"][0]["error"]
    csv_text = pd.DataFrame(rows[:1]).to_csv(index=False)
    header, line = csv_text.strip().split("\n")
    bad = client.post(
        "/score",
        content=header + "\n" + line[:-2] + ',"Yes\n',
        headers={"Content-Type": "text/csv"},
    )
    assert bad.status_code == 400, bad.text


def test_csv_body_is_typed_like_training_csv(
    client: TestClient, rows: list[dict[str, Any]]
) -> None:
    frame = pd.DataFrame(rows[:1])
    as_float = frame.assign(StoreID=[f"{float(frame['StoreID'][0])}"]).to_csv(index=False)
    plain = frame.to_csv(index=False)
    a = client.post("/score", content=as_float, headers={"Content-Type": "text/csv"}).json()
    b = client.post("/score", content=plain, headers={"Content-Type": "text/csv"}).json()
    assert a["probabilities"] == b["probabilities"]
    na = frame.assign(PriceCH=["NA"]).to_csv(index=False)
    reply = client.post("/score", content=na, headers={"Content-Type": "text/csv"})
    assert reply.status_code == 422
    assert reply.json()["details"][0]["error"].startswith("missing value not allowed")


def test_vertex_routes_win_over_defaults(
    trained_oj: Path, rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"AIP_HTTP_PORT": "8080", "AIP_PREDICT_ROUTE": "/score", "AIP_HEALTH_ROUTE": "/health"}
    platform(monkeypatch, env)
    options = ServeSettings(model_dir=trained_oj / "model")
    with TestClient(create_app(options, background_load=False)) as vertex:
        reply = vertex.post("/score", json={"instances": rows[:1]})
        assert set(reply.json()["predictions"][0]) == {"label", "probabilities"}
        assert vertex.get("/health").json() == {"status": "ready"}


def test_large_bodies_go_to_the_thread_pool_until_known_to_be_quick(
    trained_oj: Path, rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small bodies are scored on the event loop's thread. A large one goes to the thread pool
    until this model's large bodies are known to take less than the budget; a model that is
    slow on them keeps them off the loop. In the pool what counts is the thread's CPU time: a
    body that waited there (for the core, behind other pool threads) without working is as
    quick as one that did not, or a busy pool would keep every body. On the loop it is the wall
    clock: however it came about, that is how long the loop was held."""
    threads: list[int] = []
    loop_thread: list[int] = []
    cost = {"busy": 0.0, "waiting in the pool": 0.0, "waiting on the loop": 0.0}
    original = Service.score_body

    def spy(self: Service, *args: Any) -> Any:
        threads.append(threading.get_ident())
        if len(args[2]) > inline.ALWAYS_INLINE_BYTES:  # the body: only large ones are learnt
            on_loop = threads[-1] == loop_thread[-1]
            time.sleep(cost["waiting on the loop" if on_loop else "waiting in the pool"])
            end = time.thread_time() + cost["busy"]
            while time.thread_time() < end:
                pass
        return original(self, *args)

    monkeypatch.setattr(Service, "score_body", spy)

    async def on_loop() -> None:
        loop_thread.append(threading.get_ident())

    budget = 0.1  # seconds: far above what 100 rows take
    monkeypatch.setattr(inline, "BUDGET_SECONDS", budget)
    many = (rows * 20)[:100]
    large = json.dumps(many).encode() + b" " * 70_000
    headers = {"Content-Type": "application/json"}
    quick = [True, False, True, True, True]  # small; large: pool (unknown), then known quick
    pool_only = [True, False, False, False, False]
    for case, seconds, threads_each, expected in [
        ("quick", 0.0, 1, quick),
        ("waiting in the pool", 2 * budget, 1, quick),
        ("busy", 2 * budget, 1, pool_only),
        # smoothed: 4x the budget twice on the loop brings the estimate over it
        ("waiting on the loop", 4 * budget, 1, [True, False, True, True, False]),
        # with more threads than the caller's, its CPU time would miss theirs: the wall clock
        ("waiting in the pool", 2 * budget, 2, pool_only),
    ]:
        cost.update(dict.fromkeys(cost, 0.0))
        if seconds:
            cost[case] = seconds
        threads.clear()
        options = {"max_rows": 100, "max_body_bytes": 200_000, "threads": threads_each}
        with make_client(trained_oj / "model", **options) as fresh:
            fresh.portal.call(on_loop)  # type: ignore[union-attr]
            check_scores(fresh.post("/score", json=rows), 5)
            for _ in range(4):
                check_scores(fresh.post("/score", content=large, headers=headers), 100)
        assert [t == loop_thread[-1] for t in threads] == expected, (case, threads_each)
