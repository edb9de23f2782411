"""Each platform's own client against a container of the built scoring image: Triton's
``tritonclient[http]`` (OIP /v2) and KServe's ``InferenceRESTClient`` v1 and v2 on the default
contract, and the SageMaker SDK's serializers and deserializers on ``/invocations`` with the
container started as SageMaker starts it (``docker run IMAGE serve``), listening on
``SAGEMAKER_BIND_TO_PORT``.

The same clients and checks as ``tests/serving/test_real_clients.py`` (loopback ``mlship
serve``), from the same throwaway venv. Predictions must equal ``mlship predict`` on the same
rows (identical labels, probabilities within 1e-9), so the image used is the one whose runtime
``mlship predict`` picks for the model (ONNX when its parity check passed); it is the session's
image of that runtime, shared with ``test_docker.py`` (no extra build).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlship.scoring.predictor import Predictor
from tests.e2e.images import Container, require_docker
from tests.serving.clients import harness

pytestmark = [pytest.mark.docker, pytest.mark.integration, pytest.mark.slow]
SAGEMAKER_PORT = 9090  # not the 8080 default: the image must honour SAGEMAKER_BIND_TO_PORT


@pytest.fixture(scope="session", autouse=True)
def need_docker() -> None:
    """Session-scoped, so it runs before the session fixtures (training, the venv): without an
    engine the module skips at once."""
    require_docker()


@pytest.fixture(scope="session")
def clients_python(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    return harness.clients_python(tmp_path_factory, pytestconfig)


@pytest.fixture(scope="module")
def runtime(trained_oj: Path) -> str:
    """The runtime ``mlship predict`` scores this model with."""
    return str(Predictor.load(trained_oj / "model").runtime)


@pytest.fixture(scope="module")
def scoring_image(runtime: str, request: pytest.FixtureRequest) -> str:
    tag: str = request.getfixturevalue("onnx_image" if runtime == "onnx" else "image")
    return tag


@pytest.fixture(scope="module")
def box(scoring_image: str) -> Iterator[Container]:
    """The default contract: port 8888, /score, /v2, /v1."""
    container = Container(scoring_image, 8888)
    try:
        container.wait()
        yield container
    finally:
        container.stop()


@pytest.fixture(scope="module")
def sagemaker_box(scoring_image: str) -> Iterator[Container]:
    """As SageMaker runs it: the argument ``serve``, the port from SAGEMAKER_BIND_TO_PORT."""
    env = {"SAGEMAKER_BIND_TO_PORT": str(SAGEMAKER_PORT)}
    container = Container(scoring_image, SAGEMAKER_PORT, "serve", env=env)
    try:
        container.wait("/ping")
        yield container
    finally:
        container.stop()


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return harness.write_rows(tmp_path_factory.mktemp("image-clients-rows"))


@pytest.fixture(scope="module")
def reference(
    trained_oj: Path, rows: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """``mlship predict`` on the same rows, on this machine (not in the image)."""
    work = tmp_path_factory.mktemp("image-clients-reference")
    return harness.predict_reference(trained_oj / "model", rows[1], work)


@pytest.fixture(scope="module")
def metadata(box: Container) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(box.url + "/metadata", timeout=10).json()
    return body


@pytest.fixture(scope="module")
def triton(
    clients_python: Path, box: Container, rows: tuple[Path, Path], pytestconfig: pytest.Config
) -> dict[str, Any]:
    return harness.run_client(
        clients_python, "triton_http.py", f"127.0.0.1:{box.port}", harness.MODEL,
        harness.VERSION, str(rows[0]), config=pytestconfig,
    )  # fmt: skip


@pytest.fixture(scope="module")
def kserve(
    clients_python: Path, box: Container, rows: tuple[Path, Path], pytestconfig: pytest.Config
) -> dict[str, Any]:
    return harness.run_client(
        clients_python, "kserve_rest.py", box.url, harness.MODEL, str(rows[0]),
        config=pytestconfig,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sagemaker(
    clients_python: Path,
    sagemaker_box: Container,
    rows: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
) -> dict[str, Any]:
    env = harness.sagemaker_env(tmp_path_factory.mktemp("image-sagemaker-sdk"))
    return harness.run_client(
        clients_python, "sagemaker_sdk.py", sagemaker_box.url, str(rows[0]),
        config=pytestconfig, env=env,
    )  # fmt: skip


def test_the_image_scores_with_mlship_predicts_runtime(
    metadata: dict[str, Any], runtime: str, reference: dict[str, Any]
) -> None:
    assert metadata["runtime"] == runtime
    assert metadata["classes"] == reference["classes"]


def test_triton_health_and_metadata(triton: dict[str, Any], metadata: dict[str, Any]) -> None:
    harness.check_triton_metadata(triton, metadata["signature"])


def test_triton_infer(triton: dict[str, Any], reference: dict[str, Any]) -> None:
    """Per column (MLServer's convention), one 2-D BYTES tensor (Triton FIL's), the client's
    binary defaults, and wrong model names and versions."""
    harness.check_triton_per_column(triton, reference)
    harness.assert_oip_infer(triton["infer_matrix"], reference)
    harness.check_triton_defaults(triton, reference)
    harness.check_triton_wrong_model(triton)


def test_kserve_v1(kserve: dict[str, Any], reference: dict[str, Any]) -> None:
    harness.check_kserve_v1(kserve, reference)


def test_kserve_v2(kserve: dict[str, Any], reference: dict[str, Any]) -> None:
    harness.check_kserve_v2(kserve, reference)


def test_sagemaker_serializers(
    sagemaker: dict[str, Any], reference: dict[str, Any], sagemaker_box: Container
) -> None:
    harness.check_sagemaker(sagemaker, reference)
    assert f":{SAGEMAKER_PORT}" in sagemaker_box.logs()  # it listened where it was told


def test_a_client_generated_from_the_images_openapi_scores_like_mlship_predict(
    box: Container, trained_oj: Path, tmp_path: Path
) -> None:
    """``openapi-python-client`` generates from the container's own ``/openapi.json``; the
    generated package scores every OJ row through the container like ``mlship predict``."""
    import json

    import pandas as pd

    from tests import venvs
    from tests.conftest import OJ_CSV, run_cli
    from tests.serving import test_openapi_client as generated_client

    run = generated_client._run
    python = venvs.create(tmp_path / "venv", generated_client._env())
    run(*venvs.install_command(python), generated_client.GENERATOR)
    (tmp_path / "spec.json").write_bytes(httpx.get(f"{box.url}/openapi.json").content)
    run(str(python.with_name("openapi-python-client")), "generate", "--path", "spec.json",
        cwd=tmp_path)  # fmt: skip
    project = next(p for p in tmp_path.iterdir() if (p / generated_client.PACKAGE).is_dir())
    run(*venvs.install_command(python), str(project))

    frame = pd.read_csv(OJ_CSV).drop(columns=["Purchase", "STORE"])
    rows = frame.assign(StoreID=frame["StoreID"].astype(str)).to_dict(orient="records")
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    reply = json.loads(run(str(python), str(generated_client.SCRIPT), box.url, "rows.json",
                           cwd=tmp_path).strip().splitlines()[-1])  # fmt: skip
    frame.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "predicted.parquet"
    done = run_cli("predict", "-m", str(trained_oj / "model"), "-i", str(tmp_path / "rows.csv"),
                   "-o", str(out))  # fmt: skip
    assert done.exit_code == 0, done.output
    predicted = pd.read_parquet(out)
    assert reply["predictions"] == predicted["prediction"].tolist()
    for cls in ("CH", "MM"):
        ours = pd.Series([p[cls] for p in reply["probabilities"]])
        assert (ours - predicted[f"proba_{cls}"]).abs().max() <= 1e-9, cls
