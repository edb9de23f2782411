"""Access and exposure: API keys, loopback by default, no host paths, no CDN docs, and every
error reply complete (a 5xx closes its connection, so a keep-alive client never reads into a
dropped one). Also gzip bodies and ignored columns, which arrive through the same front door.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlship.errors import MlshipError
from mlship.scoring.predictor import Predictor
from mlship.serving.app import create_app
from mlship.serving.auth import ApiKeys, presented_key
from mlship.serving.metrics import MAX_COLUMN_LABELS, Metrics
from mlship.serving.settings import ServeSettings
from tests.conftest import run_cli
from tests.serving.live import JSON, exchange, live_server, oj_records

pytestmark = pytest.mark.slow

KEY = "k3y-0f-the-test-9f8e7d6c5b4a"
HASHED_KEY = "another-key-kept-only-hashed-0a1b2c"
SERVE_OPTIONS = ("--max-body-mb", "1")


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return oj_records(3)


def key_file(folder: Path) -> Path:
    path = folder / "keys.txt"
    digest = hashlib.sha256(HASHED_KEY.encode()).hexdigest()
    path.write_text(f"# scorer keys\n\n{KEY}\n  sha256:{digest}  \n")
    return path


def make_app(model_dir: Path, **options: Any) -> TestClient:
    settings = ServeSettings(model_dir=model_dir, **options)
    return TestClient(create_app(settings, background_load=False), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(trained_oj: Path) -> Iterator[TestClient]:
    with make_app(trained_oj / "model", max_body_bytes=1_000_000) as c:
        yield c


def metric(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


# ---------------------------------------------------------------------------------------------
# API keys


def test_key_file_lines_comments_and_hashes(tmp_path: Path) -> None:
    keys = ApiKeys.from_file(key_file(tmp_path))
    assert len(keys) == 2
    assert keys.accepts(KEY) and keys.accepts(HASHED_KEY)
    assert not keys.accepts("nope") and not keys.accepts(KEY + " ")
    assert KEY not in repr(keys) and HASHED_KEY not in repr(keys)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("# only a comment\n\n", "no keys"),
        (f"{KEY}\nsha256:abc\n", "line 2: sha256: needs 64 hex digits"),
    ],
)
def test_bad_key_files_are_refused_without_showing_keys(
    tmp_path: Path, text: str, needle: str
) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(text)
    with pytest.raises(MlshipError, match=needle) as caught:
        ApiKeys.from_file(path)
    assert KEY not in str(caught.value) and str(tmp_path) not in str(caught.value)


def test_serve_stops_on_a_bad_key_file_with_one_line(trained_oj: Path, tmp_path: Path) -> None:
    (tmp_path / "keys.txt").write_text(f"sha256:{KEY}\n")  # a key pasted after the prefix
    result = run_cli(
        "serve", "--model", str(trained_oj / "model"), "--api-key-file", str(tmp_path / "keys.txt")
    )
    assert result.exit_code == 1 and "line 1: sha256: needs 64 hex digits" in result.output
    assert KEY not in result.output
    missing = run_cli(
        "serve", "--model", str(trained_oj / "model"), "--api-key-file", str(tmp_path / "none")
    )
    assert missing.exit_code == 1 and "API key file 'none'" in missing.output


def test_presented_key_forms() -> None:
    assert presented_key([(b"authorization", b"Bearer  abc ")]) == "abc"
    assert presented_key([(b"authorization", b"bearer abc")]) == "abc"
    assert presented_key([(b"x-api-key", b"abc")]) == "abc"
    assert presented_key([(b"authorization", b"Basic YTpi")]) is None
    assert presented_key([(b"authorization", b"Bearer")]) is None
    assert presented_key([]) is None


def test_x_api_key_wins_over_a_bearer_token_in_any_order() -> None:
    """Cloud Run: Authorization carries the Google ID token, the key travels in X-API-Key."""
    token = (b"authorization", b"Bearer eyJhbGciOiJSUzI1NiJ9.id-token")
    key = (b"x-api-key", b"secret")
    assert presented_key([token, key]) == "secret"
    assert presented_key([key, token]) == "secret"


def test_keys_are_read_as_utf8_on_both_sides(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("caf\u00e9-key\n", encoding="utf-8")
    keys = ApiKeys.from_file(path)
    presented = presented_key([(b"x-api-key", "caf\u00e9-key".encode())])
    assert presented is not None and keys.accepts(presented)


def test_settings_never_hold_a_key(trained_oj: Path, tmp_path: Path) -> None:
    settings = ServeSettings(model_dir=trained_oj / "model", api_keys_file=key_file(tmp_path))
    shown = repr(settings) + json.dumps(settings.to_env())
    assert KEY not in shown and HASHED_KEY not in shown


@pytest.fixture(scope="module")
def guarded_server(trained_oj: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real server with API keys (and the default host: loopback)."""
    tmp = tmp_path_factory.mktemp("guarded")
    keys = key_file(tmp)
    with live_server(trained_oj / "model", tmp, "--api-key-file", str(keys), *SERVE_OPTIONS) as s:
        yield s


def test_probes_stay_open_and_the_rest_needs_a_key(
    guarded_server: Any, records: list[dict[str, Any]]
) -> None:
    conn = guarded_server.connect()
    body = json.dumps(records).encode()
    for path in ("/health", "/ready"):
        assert exchange(conn, "GET", path).status == 200, path
    for method, path, payload in [
        ("POST", "/score", body),
        ("GET", "/metadata", None),
        ("GET", "/metrics", None),
        ("GET", "/openapi.json", None),
    ]:
        reply = exchange(conn, method, path, payload, JSON)
        assert reply.status == 401, (path, reply)
        assert reply.headers["www-authenticate"] == "Bearer"
        assert reply.json()["error"].startswith("authentication required")
    wrong = exchange(conn, "POST", "/score", body, {**JSON, "Authorization": "Bearer wrong"})
    assert wrong.status == 403 and wrong.json()["error"] == "API key not accepted"
    assert exchange(conn, "POST", "/score", body, {**JSON, "X-API-Key": "wrong"}).status == 403
    bearer = exchange(conn, "POST", "/score", body, {**JSON, "Authorization": f"Bearer {KEY}"})
    assert bearer.status == 200 and len(bearer.json()["predictions"]) == 3
    hashed = exchange(conn, "POST", "/score", body, {**JSON, "X-API-Key": HASHED_KEY})
    assert hashed.status == 200
    meta = exchange(conn, "GET", "/metadata", headers={"X-API-Key": KEY})
    assert meta.status == 200 and KEY.encode() not in meta.body
    assert not any(reply.closes for reply in (wrong, bearer, hashed, meta))  # one connection


PLATFORM_VARIABLES = ("PORT", "AIP_HTTP_PORT", "AIP_PREDICT_ROUTE", "AIP_HEALTH_ROUTE")


def test_platform_probes_stay_open_and_their_scoring_routes_do_not(
    trained_oj: Path,
    tmp_path: Path,
    records: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in PLATFORM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    keys = key_file(tmp_path)
    with make_app(trained_oj / "model", sagemaker=True, api_keys_file=keys) as sagemaker:
        assert sagemaker.get("/ping").status_code == 200
        assert sagemaker.post("/invocations", json=records).status_code == 401
        authorized = sagemaker.post("/invocations", json=records, headers={"X-API-Key": KEY})
        assert authorized.status_code == 200
    monkeypatch.setenv("AIP_HTTP_PORT", "7080")
    monkeypatch.setenv("AIP_PREDICT_ROUTE", "/v1/models/oj:predict")
    monkeypatch.setenv("AIP_HEALTH_ROUTE", "/v1/models/oj")
    with make_app(trained_oj / "model", api_keys_file=keys) as vertex:
        assert vertex.get("/v1/models/oj").status_code == 200
        assert vertex.post("/v1/models/oj:predict", json={"instances": records}).status_code == 401


def test_keys_never_reach_the_log(guarded_server: Any) -> None:
    conn = guarded_server.connect()
    exchange(conn, "GET", "/metadata", headers={"Authorization": f"Bearer {KEY}"})
    exchange(conn, "GET", "/metadata", headers={"Authorization": f"Bearer {KEY}x"})
    log = guarded_server.log_text()
    assert "key(s) required" in log
    assert KEY not in log and HASHED_KEY not in log


def test_binds_loopback_by_default(guarded_server: Any) -> None:
    assert f"Uvicorn running on http://127.0.0.1:{guarded_server.port}" in guarded_server.log_text()


def test_the_image_listens_on_every_interface() -> None:
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M).group(1))
    assert entrypoint[:2] == ["mlship", "serve"]
    assert entrypoint[entrypoint.index("--host") + 1] == "0.0.0.0"


def test_help_says_where_it_listens_and_how_to_get_docs() -> None:
    result = run_cli("serve", "--help")
    text = " ".join(re.sub("[\u2500-\u257f]", " ", result.output).split())  # no box lines
    assert "127.0.0.1" in text and "0.0.0.0" in text
    assert "--docs" in text and "CDN" in text and "--api-key-file" in text
    assert "fsspec (the batch extra)" in text  # no [tag] that rich would take for markup
    assert "serve [OPTIONS] [serve]" in text  # the SageMaker word, by name


def test_a_missing_model_names_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLSHIP_MODEL_DIR", raising=False)
    result = run_cli("serve")
    assert result.exit_code == 1 and "--model is required" in result.output


# ---------------------------------------------------------------------------------------------
# errors: complete replies, 5xx closes, no host paths


def test_an_unexpected_error_is_a_complete_json_500_that_closes(
    client: TestClient, records: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("a bug in the model code at /secret/host/path")

    monkeypatch.setattr(Predictor, "predict", broken)
    reply = client.post("/score", json=records)
    assert reply.status_code == 500 and reply.headers["connection"] == "close"
    assert reply.json() == {"error": "internal error: RuntimeError", "details": []}
    monkeypatch.undo()
    assert client.post("/score", json=records).status_code == 200


def test_a_recursion_error_while_building_an_error_is_a_500_too(
    client: TestClient, records: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def deep(value: Any) -> Any:
        return deep([value])

    def decode(*_: Any, **__: Any) -> Any:
        deep(1)  # what building a message from a deeply nested cell once did

    monkeypatch.setattr("mlship.serving.codecs.native.decode", decode)
    reply = client.post("/score", json=records)
    assert reply.status_code == 500 and reply.headers["connection"] == "close"
    assert reply.json()["error"] == "internal error: RecursionError"


def test_an_error_outside_score_is_a_500_that_closes(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(Predictor, "signature", broken)
    reply = client.get("/metadata")
    assert reply.status_code == 500 and reply.headers["connection"] == "close"
    assert reply.json() == {"error": "internal error: ValueError", "details": []}


def test_a_deeply_nested_cell_leaves_the_connection_usable(
    guarded_server: Any, records: list[dict[str, Any]]
) -> None:
    """The issue's case: 5-6 of 10 follow-up requests on a kept-alive connection failed."""
    conn = guarded_server.connect()
    auth = {**JSON, "X-API-Key": KEY}
    row = json.dumps(records[0])
    nested = row.replace('"PriceCH": ', '"PriceCH": ' + "[" * 1000, 1)
    nested = nested.replace(', "PriceMM"', "]" * 1000 + ', "PriceMM"', 1)
    good = json.dumps(records).encode()
    for _ in range(10):
        bad = exchange(conn, "POST", "/score", f"[{nested}]".encode(), auth)
        assert bad.status < 500 or bad.closes, bad
        assert set(bad.json()) == {"error", "details"}
        assert exchange(conn, "POST", "/score", good, auth).status == 200


def test_a_503_is_complete_closes_and_shows_no_host_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors: {sklearn: {pickled_model: model.pkl}}\n")
    with live_server(broken, tmp_path, ready="/health") as server:
        conn = server.connect()
        for path in ("/ready", "/score", "/ready"):
            reply = exchange(conn, "GET" if path == "/ready" else "POST", path, b"[]", JSON)
            assert reply.status == 503 and reply.closes, reply
            assert "failed to load" in reply.json()["error"]
            assert str(tmp_path) not in reply.body.decode()
        assert exchange(conn, "GET", "/health").status == 200
        log = server.log_text()
    assert "model failed to load" in log
    assert str(tmp_path) not in log


def test_an_in_process_load_error_names_files_inside_the_model_dir_only(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors: {sklearn: {pickled_model: model.pkl}}\n")
    with make_app(tmp_path) as broken:
        error = broken.get("/ready").json()["error"]
    assert error.startswith("model failed to load") and str(tmp_path) not in error


def test_docs_are_off_by_default_and_openapi_stays(trained_oj: Path, client: TestClient) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").status_code == 200
    with make_app(trained_oj / "model", docs=True) as with_docs:
        assert with_docs.get("/docs").status_code == 200


# ---------------------------------------------------------------------------------------------
# gzip bodies


def test_gzip_bodies_score_like_plain_ones(
    client: TestClient, records: list[dict[str, Any]]
) -> None:
    plain = json.dumps(records).encode()
    expected = client.post("/score", content=plain, headers=JSON).json()
    for encoding in ("gzip", "x-gzip", "GZIP"):
        reply = client.post(
            "/score",
            content=gzip.compress(plain),
            headers={**JSON, "Content-Encoding": encoding},
        )
        assert reply.status_code == 200 and reply.json() == expected
    half = len(plain) // 2
    members = gzip.compress(plain[:half]) + gzip.compress(plain[half:])
    reply = client.post("/score", content=members, headers={**JSON, "Content-Encoding": "gzip"})
    assert reply.json() == expected
    identity = client.post(
        "/score", content=plain, headers={**JSON, "Content-Encoding": "identity"}
    )
    assert identity.json() == expected


def test_gzip_inflating_past_the_body_limit_is_413(client: TestClient) -> None:
    bomb = gzip.compress(b" " * 2_000_000)  # 2 MB of spaces in ~2 KB, limit 1 MB
    assert len(bomb) < 10_000
    reply = client.post("/score", content=bomb, headers={**JSON, "Content-Encoding": "gzip"})
    assert reply.status_code == 413 and "inflates past 1,000,000 bytes" in reply.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"not gzip at all", 400, "malformed gzip body"),
        (gzip.compress(b"[1, 2, 3]")[:-6], 400, "truncated"),
        (b"", 400, "malformed gzip body"),
    ],
)
def test_broken_gzip_is_400(client: TestClient, body: bytes, status: int, needle: str) -> None:
    reply = client.post("/score", content=body, headers={**JSON, "Content-Encoding": "gzip"})
    assert reply.status_code == status and needle in reply.json()["error"]


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd", "gzip, gzip"])
def test_other_encodings_are_415(
    client: TestClient, records: list[dict[str, Any]], encoding: str
) -> None:
    reply = client.post(
        "/score", content=json.dumps(records), headers={**JSON, "Content-Encoding": encoding}
    )
    assert reply.status_code == 415 and reply.headers["accept-encoding"] == "gzip, identity"
    assert "Content-Encoding" in reply.json()["error"]


def test_gzip_on_the_wire(guarded_server: Any, records: list[dict[str, Any]]) -> None:
    conn = guarded_server.connect()
    headers = {**JSON, "X-API-Key": KEY, "Content-Encoding": "gzip"}
    body = gzip.compress(json.dumps(oj_records(2000)).encode())
    reply = exchange(conn, "POST", "/score", body, headers)
    assert reply.status == 200 and len(reply.json()["predictions"]) == 2000
    big = gzip.compress(json.dumps(oj_records(5000)).encode())  # > 1 MB inflated
    too_big = exchange(conn, "POST", "/score", big, headers)
    assert too_big.status == 413, too_big
    again = exchange(conn, "POST", "/score", gzip.compress(json.dumps(records).encode()), headers)
    assert again.status == 200


# ---------------------------------------------------------------------------------------------
# unknown columns: reject or ignore (and count)


def test_extra_columns_reject_by_default(client: TestClient, records: list[dict[str, Any]]) -> None:
    reply = client.post("/score", json=[{**records[0], "Colour": "red"}])
    assert reply.status_code == 422
    assert reply.json()["details"] == [{"row": 0, "column": "Colour", "error": "unknown column"}]


def test_extra_columns_ignore_counts_them(trained_oj: Path, records: list[dict[str, Any]]) -> None:
    with make_app(trained_oj / "model", extra_columns="ignore") as lenient:
        plain = lenient.post("/score", json=records).json()
        extra = [{**r, "Colour": "red", "Size": i} for i, r in enumerate(records)]
        assert lenient.post("/score", json=extra).json() == plain
        csv = "PriceCH,Colour\n1.0,red\n"  # missing columns still count as missing
        assert (
            lenient.post("/score", content=csv, headers={"Content-Type": "text/csv"}).status_code
            == 422
        )
        text = lenient.get("/metrics").text
    assert metric(text, 'mlship_ignored_columns_total{column="Colour"}') == 1
    assert metric(text, 'mlship_ignored_columns_total{column="Size"}') == 1


def test_the_extra_columns_flag_is_validated(trained_oj: Path) -> None:
    result = run_cli("serve", "--model", str(trained_oj / "model"), "--extra-columns", "keep")
    assert result.exit_code == 1 and "extra_columns" in result.output


def test_ignored_column_labels_are_capped() -> None:
    metrics = Metrics()
    metrics.ignored([f"c{i}" for i in range(MAX_COLUMN_LABELS)])
    metrics.ignored(["c0", "late-1", "late-2", "x" * 500])
    labels = {
        sample.labels["column"]: sample.value
        for family in metrics.registry.collect()
        if family.name == "mlship_ignored_columns"
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    assert len(labels) == MAX_COLUMN_LABELS + 1
    assert labels["c0"] == 2 and labels["other"] == 1  # one request, counted once
