"""The scoring image for real: docker build, docker run (read-only root), HTTP on loopback.

Needs a Docker engine and a base image. `.ci/run` starts the engine and builds the local
base (no registry is reachable there) and sets MLSHIP_REQUIRE_DOCKER=1 so a missing engine
fails the run instead of skipping it. The images are built once per session
(``tests/e2e/conftest.py``); ``test_image_clients.py`` runs the platforms' clients on them.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from mlship.scoring.predictor import Predictor
from tests.conftest import OJ_CSV, ROOT, run_cli, train_args
from tests.e2e.images import BASE_IMAGE, Container, build_image, docker, require_docker

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="session", autouse=True)
def need_docker() -> None:
    """Session-scoped, so it runs before the session fixtures (training, the venv): without an
    engine the module skips at once."""
    require_docker()


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return pd.read_csv(OJ_CSV).drop(columns=["Purchase", "STORE"]).head(3).to_dict("records")


def test_default_contract_scores_records_and_survives_bad_input(
    image: str, records: list[dict[str, Any]]
) -> None:
    box = Container(image, 8888)
    try:
        box.wait()
        reply = httpx.post(box.url + "/score", json=records, timeout=10)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert len(body["predictions"]) == 3 and len(body["probabilities"]) == 3
        assert set(body["probabilities"][0]) == {"CH", "MM"}
        assert body["model"]["name"] == "oj-purchase"
        bad = httpx.post(box.url + "/score", json=[{**records[0], "PriceCH": "x"}], timeout=10)
        assert bad.status_code == 422 and bad.json()["details"][0]["column"] == "PriceCH"
        junk = httpx.post(
            box.url + "/score",
            content=b"{{",
            timeout=10,
            headers={"Content-Type": "application/json"},
        )
        assert junk.status_code == 400
        again = httpx.post(box.url + "/score", json=records, timeout=10)
        assert again.json()["predictions"] == body["predictions"]
        assert "mlship_requests_total" in httpx.get(box.url + "/metrics", timeout=5).text
        state = json.loads(docker("inspect", box.id).stdout)[0]
        assert state["Config"]["User"] == "10001"
        assert state["HostConfig"]["ReadonlyRootfs"] is True
    finally:
        box.stop()


def test_labels_name_the_model(image: str, trained_oj: Path) -> None:
    labels = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]["Labels"]
    info = json.loads((trained_oj / "model" / "mlship.json").read_text())
    assert labels["ai.mlship.model.name"] == "oj-purchase"
    assert labels["ai.mlship.model.version"] == info["version"]
    assert labels["ai.mlship.model.run_id"] == info["run_id"]


def test_vertex_contract(image: str, records: list[dict[str, Any]]) -> None:
    env = {
        "AIP_HTTP_PORT": "8080",
        "AIP_PREDICT_ROUTE": "/v1/endpoints/1/deployedModels/2:predict",
        "AIP_HEALTH_ROUTE": "/v1/endpoints/1/deployedModels/2",
    }
    box = Container(image, 8080, env=env)
    try:
        box.wait(env["AIP_HEALTH_ROUTE"])
        reply = httpx.post(
            box.url + env["AIP_PREDICT_ROUTE"], json={"instances": records}, timeout=10
        )
        assert reply.status_code == 200, reply.text
        assert [set(p) for p in reply.json()["predictions"]] == [{"label", "probabilities"}] * 3
    finally:
        box.stop()


def test_sagemaker_contract(image: str, records: list[dict[str, Any]]) -> None:
    box = Container(image, 8080, "serve")
    try:
        box.wait("/ping")
        csv = pd.DataFrame(records).to_csv(index=False)
        reply = httpx.post(
            box.url + "/invocations", content=csv, timeout=10, headers={"Content-Type": "text/csv"}
        )
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["predictions"]) == 3
    finally:
        box.stop()


def test_build_without_model_path_fails_clearly() -> None:
    result = subprocess.run(
        [
            "docker",
            "build",
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            "-f",
            str(ROOT / "Dockerfile"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "build arg MODEL_PATH is required" in result.stdout + result.stderr


def test_onnx_image_scores_like_the_sklearn_image(
    image: str, onnx_image: str, records: list[dict[str, Any]]
) -> None:
    for module in ("sklearn", "scipy", "pandas"):
        probe = docker(
            "run", "--rm", "--entrypoint", "python", onnx_image, "-c", f"import {module}",
            check=False,
        )  # fmt: skip
        assert probe.returncode != 0, f"{module} is installed in the ONNX image"
    replies = {}
    for tag in (image, onnx_image):
        box = Container(tag, 8888)
        try:
            box.wait()
            replies[tag] = httpx.post(box.url + "/score", json=records, timeout=10).json()
            runtime = httpx.get(box.url + "/metadata", timeout=5).json()["runtime"]
            assert runtime == ("onnx" if tag == onnx_image else "sklearn")
            assert "telemetry" not in box.logs()  # onnxruntime's usage reporting is off
        finally:
            box.stop()
    sk, onnx = replies[image], replies[onnx_image]
    assert sk["predictions"] == onnx["predictions"]
    for a, b in zip(sk["probabilities"], onnx["probabilities"], strict=True):
        assert abs(a["MM"] - b["MM"]) <= 1e-5
    sizes = {t: int(docker("image", "inspect", "--format", "{{.Size}}", t).stdout) for t in replies}
    assert sizes[onnx_image] < sizes[image]


def test_a_boosted_trees_image_serves_its_compiled_trees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The library built at training runs in the ONNX image (Debian 12's glibc, like this
    # machine's) and answers as the twin does here; 200 rows, so the library, not the twin,
    # scores them (trees.SMALL_BATCH).
    records = pd.read_csv(OJ_CSV).drop(columns=["Purchase", "STORE"]).head(200).to_dict("records")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    small = ["model.name=hist_gradient_boosting", "model.params.hist_gradient_boosting.max_iter=40"]
    trained = run_cli(*train_args(tmp_path, *small))
    assert trained.exit_code == 0 and "compiled trees: passed" in trained.output, trained.output
    twin = Predictor.load(tmp_path / "model", compiled_trees=False).predict_frame(
        pd.DataFrame(records)
    )
    tag = build_image(tmp_path / "model", "onnx")
    box = Container(tag, 8888)
    try:
        box.wait()
        assert httpx.get(box.url + "/metadata", timeout=5).json()["runtime"] == "compiled-trees"
        reply = httpx.post(box.url + "/score", json=records, timeout=10).json()
        assert reply["predictions"] == twin.predictions
        assert twin.probabilities is not None
        for got, want in zip(reply["probabilities"], twin.probabilities[:, 1], strict=True):
            assert abs(got["MM"] - want) <= 1e-12
    finally:
        box.stop()
        docker("rmi", "-f", tag, check=False)


def test_training_image_trains_the_default_model() -> None:
    tag = f"mlship-e2e-train:{uuid.uuid4().hex[:8]}"
    build = subprocess.run(
        ["docker", "build", "-f", str(ROOT / "Dockerfile.train"), "--build-arg",
         f"BASE_IMAGE={BASE_IMAGE}", "-t", tag, str(ROOT)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    try:
        run = docker("run", "--rm", tag, "output.model_dir=/tmp/model", "split.cv_folds=2",
                     check=False)  # fmt: skip
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "roc_auc" in run.stdout and "oj-purchase v1 (@candidate)" in run.stdout
        bad = docker("run", "--rm", tag, "model.name=nope", check=False)
        assert bad.returncode == 1 and "model.name 'nope'" in bad.stdout + bad.stderr
        probe = docker("run", "--rm", "--entrypoint", "python", tag, "-c", "import pytest",
                       check=False)  # fmt: skip
        assert probe.returncode != 0, "dev tools leaked into the training image"
    finally:
        docker("rmi", "-f", tag, check=False)
