"""Real drift through a real `mlship serve`: the shifted OJ batch (prices up 30%, loyalty
halved) and an unshifted resample are posted to a server that logs its requests; `/metrics`
shows the live PSI gauges high for the shifted features only, and `mlship monitor` on the
logged Parquet flags the same features with the same PSI (one binning, one PSI)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.monitoring.test_monitor import DERIVED, SHIFTED, UNTOUCHED, monitor, resample, shifted
from tests.serving.live import JSON, Live, exchange, live_server

pytestmark = pytest.mark.slow
ROWS, PER_REQUEST = 600, 50
# Nothing rotates before SIGTERM, and the window holds every row sent (10 blocks of 70).
ARGS = ("--drift-window", "700", "--log-rotate-rows", "1000000", "--log-rotate-seconds", "3600")


def post_all(live: Live, frame: pd.DataFrame) -> None:
    """The rows in requests of 50, each on a new connection (the kernel spreads them over
    the workers); a worker still loading its model answers 503 and is asked again."""
    records = frame.drop(columns=["Purchase", "STORE"]).to_dict(orient="records")
    for start in range(0, len(records), PER_REQUEST):
        body = json.dumps(records[start : start + PER_REQUEST]).encode()
        for _ in range(300):
            conn = live.connect()
            status = exchange(conn, "POST", "/score", body, JSON).status
            conn.close()
            if status == 200:
                break
            assert status == 503, status
            time.sleep(0.1)


def gauges(live: Live) -> dict[str, dict[str, float]]:
    """``/metrics``' drift samples: name -> label value ('' without labels) -> value."""
    conn = live.connect()
    reply = exchange(conn, "GET", "/metrics")
    conn.close()
    assert reply.status == 200
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            if sample.name.startswith("mlship_drift_"):
                label = next(iter(sample.labels.values()), "")
                found.setdefault(sample.name, {})[label] = sample.value
    return found


def settled(live: Live, rows: int, workers: int) -> dict[str, dict[str, float]]:
    """The gauges once ``workers`` workers have their windows and together counted ``rows``
    (each bins its queue every second; a worker still loading its model has no window yet, and
    the kernel may have given every request to the other)."""
    for _ in range(300):
        found = gauges(live)
        counted = found["mlship_drift_rows_total"][""]
        if counted == rows and found["mlship_drift_workers"][""] == workers:
            return found
        time.sleep(0.1)
    raise AssertionError(
        f"drift counted {found['mlship_drift_rows_total']} rows of {rows}, "
        f"{found['mlship_drift_workers']} of {workers} workers"
    )


def serve_and_log(trained: Path, tmp: Path, frame: pd.DataFrame, *extra: str) -> Any:
    """Post ``frame`` to a logging server; its drift gauges, then (after SIGTERM) the folder."""
    folder = tmp / "requests"
    with live_server(trained / "model", tmp, "--log-requests", str(folder), *ARGS, *extra) as live:
        post_all(live, frame)
        found = settled(live, ROWS, 2 if "--workers" in extra else 1)
        live.proc.send_signal(signal.SIGTERM)
        assert live.proc.wait(timeout=40) == 0, live.log_text()[-2000:]
    assert "live drift over 700 rows" in live.log_text()
    return found, folder


def test_the_shifted_batch_moves_the_gauges_and_the_report_agrees(
    trained_oj: Path, tmp_path: Path
) -> None:
    found, folder = serve_and_log(trained_oj, tmp_path, shifted(), "--workers", "2")
    assert found["mlship_drift_workers"][""] == 2  # whichever worker answered: the server
    assert found["mlship_drift_window_rows"][""] == ROWS
    psi = found["mlship_drift_psi"]
    assert set(psi) == SHIFTED | DERIVED | UNTOUCHED
    assert all(psi[name] > 1.0 for name in SHIFTED), psi
    assert all(psi[name] < 0.1 for name in UNTOUCHED), psi
    assert found["mlship_drift_prediction_psi"]["prediction"] > 0.5
    assert set(found["mlship_drift_null_values_total"].values()) == {0}
    assert set(found["mlship_drift_unseen_category_values_total"]) == {"StoreID", "Store7"}

    result, summary = monitor(trained_oj, folder, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert summary["data"]["rows"] == ROWS  # every row logged once, by both workers
    flagged = set(summary["drifted_features"])
    assert flagged >= SHIFTED and flagged <= SHIFTED | DERIVED
    assert {name for name, value in psi.items() if value > 0.2} == flagged
    for feature in summary["features"]:  # the same rows, bins and PSI: the same figures
        assert psi[feature["name"]] == pytest.approx(feature["psi"], abs=1e-3), feature


def test_an_unshifted_resample_moves_nothing(trained_oj: Path, tmp_path: Path) -> None:
    found, folder = serve_and_log(trained_oj, tmp_path, resample(7))
    assert found["mlship_drift_workers"][""] == 1
    psi = found["mlship_drift_psi"]
    assert max(psi.values()) < 0.1, psi
    assert found["mlship_drift_prediction_psi"]["prediction"] < 0.1

    result, summary = monitor(trained_oj, folder, tmp_path / "out", "--fail-on-drift")
    assert result.exit_code == 0, result.output
    assert summary["drifted_features"] == []
    for feature in summary["features"]:
        assert psi[feature["name"]] == pytest.approx(feature["psi"], abs=1e-3), feature
