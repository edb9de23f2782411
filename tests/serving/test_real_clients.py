"""Each platform's own client against a real `mlship serve` on loopback: Triton's
``tritonclient[http]`` on the Open Inference Protocol (/v2), KServe's ``InferenceRESTClient``
with ``protocol="v1"`` and ``protocol="v2"``, and the SageMaker SDK's serializers and
deserializers on ``/invocations`` (`mlship serve ... serve`, SageMaker's contract).

The clients run from a throwaway venv (``tests/serving/clients/harness.py``); their
predictions must equal ``mlship predict`` on the same rows: identical labels, probabilities
within 1e-9. ``tests/e2e/test_image_clients.py`` runs the same clients against the image.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving.clients import harness
from tests.serving.live import JSON, Live, exchange, live_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="session")
def clients_python(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    return harness.clients_python(tmp_path_factory, pytestconfig)


@pytest.fixture(scope="module")
def server(trained_oj: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(trained_oj / "model", tmp_path_factory.mktemp("real-clients")) as live:
        yield live


@pytest.fixture(scope="module")
def sagemaker_server(trained_oj: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """`mlship serve --model DIR --port P serve`: SageMaker's /ping and /invocations."""
    tmp = tmp_path_factory.mktemp("real-clients-sagemaker")
    with live_server(trained_oj / "model", tmp, "serve", ready="/ping") as live:
        yield live


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return harness.write_rows(tmp_path_factory.mktemp("real-clients-rows"))


@pytest.fixture(scope="module")
def reference(
    trained_oj: Path, rows: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """``mlship predict`` on the same rows."""
    work = tmp_path_factory.mktemp("real-clients-reference")
    return harness.predict_reference(trained_oj / "model", rows[1], work)


@pytest.fixture(scope="module")
def triton(
    clients_python: Path, server: Live, rows: tuple[Path, Path], pytestconfig: pytest.Config
) -> dict[str, Any]:
    url = f"127.0.0.1:{server.port}"
    return harness.run_client(
        clients_python, "triton_http.py", url, harness.MODEL, harness.VERSION, str(rows[0]),
        config=pytestconfig,
    )  # fmt: skip


@pytest.fixture(scope="module")
def kserve(
    clients_python: Path, server: Live, rows: tuple[Path, Path], pytestconfig: pytest.Config
) -> dict[str, Any]:
    url = f"http://127.0.0.1:{server.port}"
    return harness.run_client(
        clients_python, "kserve_rest.py", url, harness.MODEL, str(rows[0]), config=pytestconfig
    )


@pytest.fixture(scope="module")
def sagemaker(
    clients_python: Path,
    sagemaker_server: Live,
    rows: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
) -> dict[str, Any]:
    env = harness.sagemaker_env(tmp_path_factory.mktemp("sagemaker-sdk"))
    url = f"http://127.0.0.1:{sagemaker_server.port}"
    return harness.run_client(
        clients_python, "sagemaker_sdk.py", url, str(rows[0]), config=pytestconfig, env=env
    )


def test_score_equals_mlship_predict(
    server: Live, rows: tuple[Path, Path], reference: dict[str, Any]
) -> None:
    """POST /score on the server the clients use scores as the reference does."""
    conn = server.connect()
    try:
        reply = exchange(conn, "POST", "/score", rows[0].read_bytes(), JSON)
    finally:
        conn.close()
    assert reply.status == 200, reply.body[:500]
    body = reply.json()
    matrix = [[p[c] for c in reference["classes"]] for p in body["probabilities"]]
    harness.assert_scores_equal(body["predictions"], matrix, reference["classes"], reference)


# ---------------------------------------------------------------------------------------------
# tritonclient[http]


def test_triton_health_and_metadata(triton: dict[str, Any], server: Live) -> None:
    conn = server.connect()
    try:
        signature = exchange(conn, "GET", "/metadata").json()["signature"]
    finally:
        conn.close()
    harness.check_triton_metadata(triton, signature)


def test_triton_infer_per_column(triton: dict[str, Any], reference: dict[str, Any]) -> None:
    harness.check_triton_per_column(triton, reference)


def test_triton_infer_matrix(triton: dict[str, Any], reference: dict[str, Any]) -> None:
    """One BYTES tensor [n, k] in signature order (numbers as decimal text)."""
    harness.assert_oip_infer(triton["infer_matrix"], reference)


def test_triton_default_binary_requests(triton: dict[str, Any], reference: dict[str, Any]) -> None:
    harness.check_triton_defaults(triton, reference)


def test_triton_wrong_model(triton: dict[str, Any]) -> None:
    harness.check_triton_wrong_model(triton)


# ---------------------------------------------------------------------------------------------
# kserve InferenceRESTClient


def test_kserve_v1(kserve: dict[str, Any], reference: dict[str, Any]) -> None:
    harness.check_kserve_v1(kserve, reference)


def test_kserve_v2(kserve: dict[str, Any], reference: dict[str, Any]) -> None:
    harness.check_kserve_v2(kserve, reference)


# ---------------------------------------------------------------------------------------------
# sagemaker SDK serializers / deserializers


def test_sagemaker_serializers(sagemaker: dict[str, Any], reference: dict[str, Any]) -> None:
    harness.check_sagemaker(sagemaker, reference)
