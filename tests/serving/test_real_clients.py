"""Each platform's own client against a real `mlship serve` on loopback: Triton's
``tritonclient[http]`` on the Open Inference Protocol (/v2), and KServe's
``InferenceRESTClient`` with ``protocol="v1"`` and ``protocol="v2"``.

The clients are not the project's dependencies (kserve would downgrade pandas, tritonclient
ml-dtypes): they are installed, pinned, into a throwaway venv once per session, and the small
scripts in ``tests/serving/clients/`` run with that venv's python and print JSON. Their
predictions must equal POST /score on the same server for the same rows: identical labels,
probabilities within 1e-9.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import OJ_CSV
from tests.serving.live import JSON, Live, exchange, live_server, oj_records

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLIENTS = ("tritonclient[http]==2.73.0", "kserve==0.21.0")
SCRIPTS = Path(__file__).with_name("clients")
MODEL, VERSION = "oj-purchase", "1"
TOLERANCE = 1e-9
INSTALL_TIMEOUT_S = 900
CLIENT_TIMEOUT_S = 300


def _say(config: pytest.Config, line: str) -> None:
    """A line on the terminal even with output captured (the timings)."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:  # pragma: no cover - plugins disabled
        print(line, file=sys.stderr)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@pytest.fixture(scope="session")
def clients_python(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """The python of a fresh venv holding only the pinned client libraries."""
    venv = tmp_path_factory.mktemp("clients") / "venv"
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *CLIENTS],
        capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env=_client_env(),
    )  # fmt: skip
    assert install.returncode == 0, f"pip install {' '.join(CLIENTS)}:\n{install.stderr[-4000:]}"
    _say(pytestconfig, f"[real clients] venv with {', '.join(CLIENTS)}: "
                       f"{time.monotonic() - start:.1f}s")  # fmt: skip
    return python


def _client_env() -> dict[str, str]:
    """The runner's environment without what would mix the project's packages in."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.fixture(scope="module")
def server(trained_oj: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(trained_oj / "model", tmp_path_factory.mktemp("real-clients")) as live:
        yield live


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every OJ row (1,070) as records, without the target."""
    rows = oj_records(len(pd.read_csv(OJ_CSV)))
    path = tmp_path_factory.mktemp("real-clients-rows") / "rows.json"
    path.write_text(json.dumps(rows))
    return path


@pytest.fixture(scope="module")
def reference(server: Live, rows_file: Path) -> dict[str, Any]:
    """POST /score on the same server for the same rows."""
    conn = server.connect()
    try:
        reply = exchange(conn, "POST", "/score", rows_file.read_bytes(), JSON)
    finally:
        conn.close()
    assert reply.status == 200, reply.body[:500]
    body: dict[str, Any] = reply.json()
    assert len(body["predictions"]) == len(json.loads(rows_file.read_text()))
    return body


def run_client(python: Path, script: str, *args: str, config: pytest.Config) -> dict[str, Any]:
    """Run ``clients/SCRIPT`` with the clients venv's python; its JSON report."""
    start = time.monotonic()
    done = subprocess.run(
        [str(python), str(SCRIPTS / script), *args],
        capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, env=_client_env(),
    )  # fmt: skip
    assert done.returncode == 0, f"{script} failed:\n{done.stderr[-4000:]}"
    _say(config, f"[real clients] {script}: {time.monotonic() - start:.1f}s")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.fixture(scope="module")
def triton(
    clients_python: Path, server: Live, rows_file: Path, pytestconfig: pytest.Config
) -> dict[str, Any]:
    url = f"127.0.0.1:{server.port}"
    return run_client(
        clients_python, "triton_http.py", url, MODEL, VERSION, str(rows_file), config=pytestconfig
    )


@pytest.fixture(scope="module")
def kserve(
    clients_python: Path, server: Live, rows_file: Path, pytestconfig: pytest.Config
) -> dict[str, Any]:
    url = f"http://127.0.0.1:{server.port}"
    return run_client(
        clients_python, "kserve_rest.py", url, MODEL, str(rows_file), config=pytestconfig
    )


def assert_scores_equal(
    labels: list[Any], probabilities: list[list[float]], classes: list[str], want: dict[str, Any]
) -> None:
    """Labels identical to /score's, each class's probability within ``TOLERANCE``."""
    assert labels == want["predictions"]
    assert len(probabilities) == len(want["probabilities"])
    worst = max(
        abs(got[j] - row[c])
        for got, row in zip(probabilities, want["probabilities"], strict=True)
        for j, c in enumerate(classes)
    )
    assert worst <= TOLERANCE, f"largest probability difference {worst}"
    assert all(len(got) == len(classes) for got in probabilities)


def assert_oip_infer(
    result: dict[str, Any], want: dict[str, Any], request_id: str | None = None
) -> None:
    assert result["id"] == request_id
    assert result["model_name"] == MODEL
    classes = result["probabilities.parameters"]["classes"]
    assert classes == sorted(want["probabilities"][0])
    assert_scores_equal(result["label"], result["probabilities"], classes, want)


# ---------------------------------------------------------------------------------------------
# tritonclient[http]


def test_triton_health_and_metadata(triton: dict[str, Any], server: Live) -> None:
    assert triton["is_server_live"] is True
    assert triton["is_server_ready"] is True
    assert triton["is_model_ready"] is True
    assert triton["is_model_ready_versioned"] is True
    assert triton["server_metadata"]["name"] == "mlship"
    meta = triton["model_metadata"]
    assert meta["name"] == MODEL and meta["versions"] == [VERSION]
    conn = server.connect()
    try:
        signature = exchange(conn, "GET", "/metadata").json()["signature"]
    finally:
        conn.close()
    assert [i["name"] for i in meta["inputs"]] == [c["name"] for c in signature]
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64", "BYTES"}
    assert all(i["shape"] == [-1] for i in meta["inputs"])
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]


def test_triton_infer_per_column(triton: dict[str, Any], reference: dict[str, Any]) -> None:
    result = triton["infer"]
    assert result["model_version"] == VERSION
    assert result["outputs"] == ["label", "probabilities"]
    assert_oip_infer(result, reference, "triton-1")
    label_only = triton["infer_versioned_label_only"]
    assert label_only["outputs"] == ["label"] and label_only["id"] == "triton-2"
    assert label_only["label"] == reference["predictions"]


def test_triton_infer_matrix(triton: dict[str, Any], reference: dict[str, Any]) -> None:
    """One BYTES tensor [n, k] in signature order (numbers as decimal text)."""
    assert_oip_infer(triton["infer_matrix"], reference)


def test_triton_default_binary_requests(triton: dict[str, Any], reference: dict[str, Any]) -> None:
    """The client's defaults: binary outputs asked for (JSON comes back and is read); binary
    inputs refused with a 400 that names the fix."""
    assert_oip_infer(triton["infer_no_outputs"], reference)
    refused = triton["infer_binary_inputs"]
    assert refused["status"] == "400"
    assert "binary_data=False" in refused["message"]


def test_triton_wrong_model(triton: dict[str, Any]) -> None:
    assert triton["is_model_ready_wrong_name"] is False
    assert triton["is_model_ready_wrong_version"] is False
    for call in ("metadata_wrong_name", "infer_wrong_name"):
        assert triton[call]["status"] == "404", triton[call]
        assert "no-such-model" in triton[call]["message"]
    for call in ("metadata_wrong_version", "infer_wrong_version"):
        assert triton[call]["status"] == "404", triton[call]
        assert "version 999" in triton[call]["message"]


# ---------------------------------------------------------------------------------------------
# kserve InferenceRESTClient


def test_kserve_v1(kserve: dict[str, Any], reference: dict[str, Any]) -> None:
    v1 = kserve["v1"]
    assert v1["is_server_live"] is True
    assert v1["is_model_ready"] is True
    reply = v1["infer"]
    classes = sorted(reply["probabilities"][0])
    matrix = [[p[c] for c in classes] for p in reply["probabilities"]]
    assert_scores_equal(reply["predictions"], matrix, classes, reference)
    for call in ("is_model_ready_wrong_name", "infer_wrong_name"):
        assert v1[call]["status"] == 404, v1[call]
        assert "no-such-model" in v1[call]["message"]


def test_kserve_v2(kserve: dict[str, Any], reference: dict[str, Any]) -> None:
    v2 = kserve["v2"]
    assert v2["is_server_live"] is True
    assert v2["is_server_ready"] is True
    assert v2["is_model_ready"] is True
    assert v2["is_model_ready_wrong_name"] is False  # the client maps a 4xx to False
    result = v2["infer"]
    rows = len(reference["predictions"])
    assert result["label.shape"] == [rows]
    assert result["probabilities.shape"] == [rows, 2]
    assert_oip_infer(result, reference, "kserve-1")
    wrong = v2["infer_wrong_name"]
    assert wrong["status"] == 404 and "no-such-model" in wrong["message"]
