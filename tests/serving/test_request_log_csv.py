"""The CSV request log (a service without pyarrow, as in the serving images).

In process, the destination is switched to CSV; the rows read back must equal the replies
exactly (floats round-trip), and ``mlship monitor``'s reader must give the same frame, hence
the same PSI, from CSV as from Parquet logs of the same requests. On the wire, a real
``mlship serve`` whose interpreter cannot import pyarrow (a ``pyarrow`` package on
PYTHONPATH that raises ImportError, so the server and any worker it spawns are blocked) must
say CSV in its start line and flush every queued row as CSV on SIGTERM.
"""

from __future__ import annotations

import http.client
import json
import signal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlship.config import MonitorConfig
from mlship.errors import DataError, MlshipError
from mlship.model.profile import Profile, read_profile
from mlship.monitoring.drift import features_drift
from mlship.monitoring.job import read_batch, with_features
from mlship.monitoring.logged import is_csv_log
from mlship.serving.app import create_app
from mlship.serving.request_files import CSV, check_destination
from mlship.serving.settings import ServeSettings
from tests.services import HOST, free_port, http_ok, running
from tests.serving.live import CLEAN_ENV, JSON, MLSHIP, exchange, oj_records

pytestmark = pytest.mark.slow
NO_ROTATION = ("--log-rotate-rows", "1000000", "--log-rotate-seconds", "3600")


@pytest.fixture
def model(trained_oj: Path) -> Path:
    return trained_oj / "model"


def profile_of(model: Path) -> Profile:
    profile = read_profile(model)
    assert profile is not None
    return profile


def shifted(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prices up 30%: a batch that drifts, so the PSI compared below is not all zeros."""
    return [{**r, "PriceCH": r["PriceCH"] * 1.3, "PriceMM": r["PriceMM"] * 1.3} for r in records]


def log_requests(
    model: Path, folder: Path, batches: list[list[dict[str, Any]]], fmt: str | None = None
) -> list[dict[str, Any]]:
    """Score ``batches`` through an app logging to ``folder`` (in ``fmt`` if given); replies."""
    settings = ServeSettings(model_dir=model, log_requests=str(folder), log_rotate_rows=150)
    replies = []
    with TestClient(create_app(settings, background_load=False)) as client:
        if fmt is not None:
            client.app.state.service.request_log.destination.format = fmt
        for i, batch in enumerate(batches):
            reply = client.post("/score", json=batch, headers={"X-Request-Id": f"r{i}"})
            assert reply.status_code == 200, reply.text
            replies.append(reply.json())
    return replies


def test_csv_rows_equal_what_was_sent_and_predicted(model: Path, tmp_path: Path) -> None:
    records = oj_records(400)
    batches = [records[i : i + 40] for i in range(0, 400, 40)]
    replies = log_requests(model, tmp_path, batches, CSV)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 3 and all(f.name.endswith(".csv") for f in files)  # 150 rows a file
    assert all(f.name.startswith("requests-") for f in files)
    frame = read_batch(str(tmp_path), profile_of(model))
    assert len(frame) == 400
    assert frame["request_id"].tolist() == [f"r{i // 40}" for i in range(400)]
    assert frame["prediction"].tolist() == [p for r in replies for p in r["predictions"]]
    probabilities = [p for r in replies for p in r["probabilities"]]
    assert frame["proba_CH"].tolist() == [p["CH"] for p in probabilities]  # exact, not approx
    assert frame["PriceCH"].tolist() == [float(r["PriceCH"]) for r in records]
    assert frame["StoreID"].tolist() == [str(r["StoreID"]) for r in records]  # a category
    assert frame["Store7"].tolist() == [r["Store7"] for r in records]
    assert frame["model_version"].tolist() == [replies[0]["model"]["version"]] * 400
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    assert stamps.notna().all() and frame["timestamp"].str.endswith("Z").all()


def test_monitor_reads_csv_as_parquet_and_finds_the_same_psi(model: Path, tmp_path: Path) -> None:
    profile = profile_of(model)
    assert profile.features["StoreID"].kind == "categorical"
    batches = [shifted(oj_records(300)[i : i + 30]) for i in range(0, 300, 30)]
    (parquet := tmp_path / "parquet").mkdir()
    (csv := tmp_path / "csv").mkdir()
    log_requests(model, parquet, batches)
    log_requests(model, csv, batches, CSV)
    assert is_csv_log(str(csv)) and not is_csv_log(str(parquet))
    frames = [with_features(read_batch(str(f), profile), profile) for f in (csv, parquet)]
    features = list(profile.features)
    pd.testing.assert_frame_equal(
        frames[0][features], frames[1][features], check_dtype=False, check_exact=True
    )
    drifts = [features_drift(profile, f[features], MonitorConfig()) for f in frames]
    psi = [{d.name: d.psi for d in found} for found in drifts]
    assert psi[0] == psi[1]
    assert psi[0]["PriceCH"] > 0.2 and psi[0]["StoreID"] < 0.2  # a real shift, measured alike


def test_without_pyarrow_a_local_folder_logs_csv_and_a_uri_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib

    real_import = importlib.import_module
    blocked: tuple[str, ...] = ("pyarrow",)

    def without(name: str) -> Any:
        if name.split(".")[0] in blocked:
            raise ImportError(name)
        return real_import(name)

    monkeypatch.setattr(importlib, "import_module", without)
    assert check_destination(str(tmp_path)) == "csv"
    blocked = ("pyarrow", "fsspec")
    with pytest.raises(MlshipError) as caught:
        check_destination("gs://bucket/requests/")
    assert str(caught.value) == (
        "--log-requests gs://bucket/requests/ needs fsspec, which this environment does not "
        "have: pip install 'mlship[batch]' (pyarrow and fsspec); or log to a local folder "
        "(a bucket mounted as a volume, say)"
    )
    monkeypatch.undo()
    assert check_destination(str(tmp_path)) == "parquet"


def test_a_server_without_pyarrow_flushes_csv_on_sigterm(model: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "blocked" / "pyarrow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('pyarrow is blocked in this test')\n")
    folder = tmp_path / "requests"
    port = free_port()
    command = [str(MLSHIP), "serve", "--model", str(model), "--port", str(port),
               "--log-requests", str(folder), *NO_ROTATION]  # fmt: skip
    env = {**CLEAN_ENV, "PYTHONPATH": str(blocker.parent)}
    log = tmp_path / "serve.log"
    sent: dict[str, list[dict[str, Any]]] = {}
    replies: dict[str, Any] = {}
    with running(
        "mlship serve", command, log_path=log, ready=lambda: http_ok(f"http://{HOST}:{port}/ready"),
        timeout=120, cwd=tmp_path, env=env, grace=30,
    ) as proc:  # fmt: skip
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        for i in range(25):
            rid = f"csv-{i}"
            sent[rid] = oj_records(1 + i % 4)
            headers = {**JSON, "X-Request-Id": rid}
            reply = exchange(conn, "POST", "/score", json.dumps(sent[rid]).encode(), headers)
            assert reply.status == 200, reply.body
            replies[rid] = reply.json()
        assert not list(folder.glob("*.csv"))  # nothing written before the signal
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
    text = log.read_text()
    assert "as csv (no pyarrow here)" in text, text[-2000:]
    files = list(folder.iterdir())
    assert len(files) == 1 and files[0].suffix == ".csv", files
    frame = read_batch(str(folder), profile_of(model))
    for rid, records in sent.items():
        rows = frame[frame["request_id"] == rid]
        assert rows["prediction"].tolist() == replies[rid]["predictions"]
        assert rows["proba_MM"].tolist() == [p["MM"] for p in replies[rid]["probabilities"]]
        assert rows["PriceMM"].tolist() == [float(r["PriceMM"]) for r in records]
        assert rows["StoreID"].tolist() == [str(r["StoreID"]) for r in records]
    assert len(frame) == sum(map(len, sent.values()))


def test_a_csv_cell_that_is_not_a_number_is_one_line_naming_file_and_column(
    model: Path, tmp_path: Path
) -> None:
    log_requests(model, tmp_path, [oj_records(3)], CSV)
    (logged,) = tmp_path.glob("*.csv")
    text = logged.read_text().splitlines()
    header = text[0].split(",")
    cells = text[1].split(",")
    cells[header.index("PriceCH")] = "cheap"
    logged.write_text("\n".join([text[0], ",".join(cells), *text[2:]]) + "\n")
    with pytest.raises(DataError) as caught:
        read_batch(str(tmp_path), profile_of(model))
    assert str(caught.value).startswith(f"data {logged.name}: column 'PriceCH': ")
    assert "\n" not in str(caught.value)
