"""Request logging in the real ONNX image: it has no pyarrow (nor pandas or fsspec), so it
logs CSV files to a folder, here a host folder mounted into the read-only container, as a
Cloud Storage volume is on Cloud Run (deploy/terraform/services.tf).

``docker stop`` sends SIGTERM: the rows still queued must be written before the container
exits 0, they must equal what was sent and answered, and ``mlship monitor --data`` must read
the folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from mlship.model.profile import read_profile
from mlship.monitoring.job import read_batch
from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV, run_cli
from tests.e2e.images import docker, free_port, require_docker

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="session", autouse=True)
def need_docker() -> None:
    require_docker()


def ready(url: str, cid: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"container not ready: {docker('logs', cid, check=False).stderr[-2000:]}")


def serve_and_stop(
    image: str, folder: Path, batches: list[list[dict[str, Any]]]
) -> tuple[list[dict[str, Any]], int, str]:
    """Run ``image`` logging to ``folder``, score ``batches``, docker stop it: the replies,
    the exit code and the container's log."""
    port = free_port()
    cid = docker(
        "run", "-d", "--read-only", "-p", f"127.0.0.1:{port}:8888", "-v", f"{folder}:/requests",
        image, "--log-requests", "/requests", "--log-rotate-seconds", "3600",
    ).stdout.strip()  # fmt: skip
    replies: list[dict[str, Any]] = []
    try:
        ready(f"http://127.0.0.1:{port}", cid)
        for i, batch in enumerate(batches):
            reply = httpx.post(
                f"http://127.0.0.1:{port}/score", json=batch,
                headers={"X-Request-Id": f"img-{i}"}, timeout=10,
            )  # fmt: skip
            assert reply.status_code == 200, reply.text
            replies.append(reply.json())
        assert not list(folder.glob("*.csv"))  # all still queued: the stop must write them
        docker("stop", "--time", "30", cid)  # SIGTERM, then the drain and the last write
        state = json.loads(docker("inspect", cid).stdout)[0]["State"]
        logs = docker("logs", cid, check=False)
    finally:
        docker("rm", "-f", cid, check=False)
    return replies, int(state["ExitCode"]), logs.stdout + logs.stderr


def test_onnx_image_logs_csv_to_a_mounted_folder_that_monitor_reads(
    onnx_image: str, trained_oj: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "requests"
    folder.mkdir()
    folder.chmod(0o777)  # the image's user (uid 10001, the Dockerfile's USER) owns nothing here
    frame = pd.read_csv(OJ_CSV).drop(columns=["Purchase", "STORE"])
    batches = [frame.iloc[i : i + 25].to_dict("records") for i in range(0, 200, 25)]
    replies, code, text = serve_and_stop(onnx_image, folder, batches)
    assert code == 0, text[-2000:]
    assert "as csv (no pyarrow here)" in text, text[-2000:]
    files = sorted(p.name for p in folder.iterdir())
    assert len(files) == 1 and files[0].startswith("requests-") and files[0].endswith(".csv")
    profile = read_profile(trained_oj / "model")
    assert profile is not None
    logged = read_batch(str(folder), profile)
    assert len(logged) == 200
    assert logged["request_id"].tolist() == [f"img-{i // 25}" for i in range(200)]
    assert logged["prediction"].tolist() == [p for r in replies for p in r["predictions"]]
    probabilities = [p for r in replies for p in r["probabilities"]]
    assert logged["proba_CH"].tolist() == [p["CH"] for p in probabilities]
    assert logged["PriceCH"].tolist() == frame["PriceCH"].head(200).astype(float).tolist()
    assert logged["StoreID"].tolist() == frame["StoreID"].head(200).astype(str).tolist()
    assert set(logged["model_version"]) == {replies[0]["model"]["version"]}

    out = tmp_path / "monitoring"
    result = run_cli(
        "monitor", "--model", str(trained_oj / "model"), "--data", str(folder),
        "--output", str(out), "--config", str(BASE_CONFIG), "--env-dir", str(ENV_DIR),
        "--tracking-uri", f"sqlite:///{trained_oj / 'mlruns.db'}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["rows"] == 200
    assert len(summary["features"]) == len(profile.features)
