"""Request logging in-process: rows on disk match the replies, ids, sampling, a full queue.

The wire behaviours (SIGTERM flush, workers, the start-up failure) are in
``test_request_log_live.py``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from mlship.errors import MlshipError
from mlship.serving import request_files
from mlship.serving.app import create_app
from mlship.serving.request_files import Destination, check_destination
from mlship.serving.request_log import request_id, sampled
from mlship.serving.settings import ServeSettings
from tests.serving.live import oj_records

pytestmark = pytest.mark.slow


def logging_client(model: Path, folder: Path, **options: Any) -> TestClient:
    settings = ServeSettings(model_dir=model, log_requests=str(folder), **options)
    return TestClient(create_app(settings, background_load=False))


def logged(folder: Path) -> list[dict[str, Any]]:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return []
    return pq.read_table(folder).to_pylist()  # the dataset reader skips hidden temp files


def metric(client: TestClient, line_start: str) -> float:
    text = client.get("/metrics").text
    line = next(line for line in text.splitlines() if line.startswith(line_start))
    return float(line.rsplit(" ", 1)[1])


@pytest.fixture
def model(trained_oj: Path) -> Path:
    return trained_oj / "model"


def test_rows_on_disk_match_the_requests_and_replies(model: Path, tmp_path: Path) -> None:
    records = oj_records(7)
    replies = {}
    with logging_client(model, tmp_path) as client:
        for i, (start, stop) in enumerate([(0, 1), (1, 4), (4, 7)]):
            reply = client.post(
                "/score", json=records[start:stop], headers={"X-Request-Id": f"r{i}"}
            )
            assert reply.status_code == 200 and reply.headers["x-request-id"] == f"r{i}"
            replies[f"r{i}"] = reply.json()
        bad = client.post("/score", json=[{**records[0], "PriceCH": "cheap"}])
    assert bad.status_code == 422 and len(bad.headers["x-request-id"]) == 32
    rows = logged(tmp_path)  # the app's shutdown wrote the last file
    assert len(rows) == 7  # the 4xx requests logged nothing
    assert [r["request_id"] for r in rows] == ["r0", "r1", "r1", "r1", "r2", "r2", "r2"]
    position: dict[str, int] = {}
    for row, record in zip(rows, records, strict=True):
        reply = replies[row["request_id"]]
        j = position[row["request_id"]] = position.get(row["request_id"], -1) + 1
        assert row["prediction"] == reply["predictions"][j]
        assert row["proba_CH"] == reply["probabilities"][j]["CH"]
        assert row["proba_MM"] == reply["probabilities"][j]["MM"]
        assert row["model_name"] == reply["model"]["name"]
        assert row["model_version"] == reply["model"]["version"]
        assert row["route"] == "/score"
        assert row["timestamp"].tzinfo is not None
        assert row["PriceCH"] == pytest.approx(float(record["PriceCH"]))
        assert row["Store7"] == record["Store7"]


def test_request_id_is_echoed_or_generated(model: Path, tmp_path: Path) -> None:
    with logging_client(model, tmp_path, log_sample_rate=0) as client:
        one = client.post("/score", json=oj_records(1)).headers["x-request-id"]
        two = client.post("/score", json=oj_records(1)).headers["x-request-id"]
        bad = client.post("/score", json=oj_records(1), headers={"X-Request-Id": "x" * 500})
    assert len(one) == 32 and one != two
    assert bad.headers["x-request-id"] != "x" * 500
    assert request_id({"x-request-id": "abc-123"}) == "abc-123"
    assert request_id({"x-request-id": "tab\there"}) != "tab\there"
    assert not list(tmp_path.glob("*.parquet"))  # sample rate 0: nothing


def test_sample_rate_half_logs_the_requests_its_ids_select(model: Path, tmp_path: Path) -> None:
    ids = [f"req-{i}" for i in range(200)]
    with logging_client(model, tmp_path, log_sample_rate=0.5) as client:
        for rid in ids:
            assert client.post(
                "/score", json=oj_records(1), headers={"X-Request-Id": rid}
            ).is_success
    chosen = [rid for rid in ids if sampled(rid, 0.5)]
    assert 80 <= len(chosen) <= 120
    assert sorted(r["request_id"] for r in logged(tmp_path)) == sorted(chosen)
    assert all(sampled(rid, 1.0) for rid in ids) and not any(sampled(rid, 0.0) for rid in ids)


def test_full_queue_drops_and_counts_without_blocking(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_write = Destination.write

    def blocked_write(self: Destination, table: Any, when: float) -> str:
        release.wait(30)
        return real_write(self, table, when)

    monkeypatch.setattr(Destination, "write", blocked_write)
    options = {"log_queue_rows": 3, "log_rotate_rows": 1}
    with logging_client(model, tmp_path, **options) as client:
        started = time.monotonic()
        for _ in range(20):
            assert client.post("/score", json=oj_records(1)).status_code == 200
        assert time.monotonic() - started < 10  # nothing waited on the blocked writer
        dropped = metric(client, 'mlship_request_log_dropped_rows_total{reason="queue_full"}')
        assert dropped >= 20 - 3 - 2  # queue of 3, one row being written, one taken
        release.set()
        deadline = time.monotonic() + 20
        while (written := metric(client, "mlship_request_log_written_rows_total")) + dropped < 20:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert written + dropped == 20
    assert len(logged(tmp_path)) == 20 - dropped


def test_a_half_written_file_is_never_visible(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside, release = threading.Event(), threading.Event()
    real = request_files.Path.replace

    def slow_rename(self: Path, target: Any) -> Path:
        inside.set()  # the temporary file is complete, not yet renamed
        release.wait(30)
        return real(self, target)

    monkeypatch.setattr(request_files.Path, "replace", slow_rename)
    with logging_client(model, tmp_path, log_rotate_rows=1) as client:
        client.post("/score", json=oj_records(2))
        assert inside.wait(10)
        assert not list(tmp_path.glob("*.parquet"))  # only the hidden temporary name
        assert [p.name.startswith(".") for p in tmp_path.iterdir()] == [True]
        assert logged(tmp_path) == []
        release.set()
    assert len(logged(tmp_path)) == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_file_names_are_unique_and_fsspec_uploads_whole_files(model: Path, tmp_path: Path) -> None:
    import fsspec

    memory = fsspec.filesystem("memory")
    with logging_client(model, tmp_path, log_rotate_rows=1) as client:
        client.app.state.service.request_log.destination = Destination.open("memory://requests")
        for _ in range(3):
            client.post("/score", json=oj_records(1))
    names = [Path(p).name for p in memory.ls("/requests", detail=False)]
    assert len(names) == len(set(names)) == 3
    assert all(n.startswith("requests-") and n.endswith(".parquet") for n in names)
    memory.rm("/requests", recursive=True)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("nope://bucket/requests", "--log-requests nope://bucket/requests: "),
        ("/proc/no-such-folder/requests", "cannot create the folder"),
    ],
)
def test_a_bad_destination_fails_in_one_line(uri: str, message: str) -> None:
    with pytest.raises(MlshipError, match=r"^--log-requests") as caught:
        check_destination(uri)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_variables_turn_it_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLSHIP_LOG_REQUESTS", "gs://bucket/requests/")
    monkeypatch.setenv("MLSHIP_LOG_SAMPLE_RATE", "0.25")
    settings = ServeSettings(model_dir=tmp_path)
    assert (settings.log_requests, settings.log_sample_rate) == ("gs://bucket/requests/", 0.25)
    assert ServeSettings(model_dir=tmp_path, log_sample_rate=1).log_sample_rate == 1
    monkeypatch.delenv("MLSHIP_LOG_REQUESTS")
    assert ServeSettings(model_dir=tmp_path).log_requests is None  # off by default
