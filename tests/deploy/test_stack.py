"""The local MLOps stack for real: compose up, train against its MLflow, score, tear down.

Brings up deploy/compose (PostgreSQL + MLflow with proxied artifacts) under its own compose
project and free loopback ports, trains the OJ model with ``--env dev`` against that server,
builds the scorer from the stack's registry (``models:/oj-purchase@candidate``), runs it as
the compose ``scorer`` service and POSTs to it. Everything is removed at the end, volumes too;
the built images are kept (fixed tags) so the next run reuses their layers.

Where no registry is reachable every image is built on the local base image
(compose.local.yaml). MLSHIP_REQUIRE_DOCKER=1 turns a missing engine into a failure.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV, ROOT, run_cli
from tests.deploy.tools import DEPLOY, find_tool, run

BASE_IMAGE = os.environ.get("MLSHIP_TEST_BASE_IMAGE", "mlship-base:bookworm")
COMPOSE_DIR = DEPLOY / "compose"
SCORER_IMAGE = "mlship-scorer:stack-test"
pytestmark = [pytest.mark.docker, pytest.mark.slow]


def compose_command() -> list[str] | None:
    if run("docker", "compose", "version").returncode == 0:
        return ["docker", "compose"]
    standalone = find_tool("docker-compose")
    if standalone and "v2." in run(standalone, "version").stdout:
        return [standalone]
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    compose: list[str]
    project: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.env['MLFLOW_PORT']}"

    @property
    def scorer_url(self) -> str:
        return f"http://127.0.0.1:{self.env['SCORER_PORT']}"

    def __call__(self, *args: str, timeout: float = 600) -> str:
        files = [
            "-f",
            str(COMPOSE_DIR / "compose.yaml"),
            "-f",
            str(COMPOSE_DIR / "compose.local.yaml"),
        ]
        cmd = [*self.compose, *files, "-p", self.project, "--profile", "scorer", *args]
        result = run(*cmd, env=self.env, timeout=timeout)
        assert result.returncode == 0, (
            f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
        return result.stdout

    def logs(self) -> str:
        result = run(*self.compose, "-p", self.project, "logs", "--tail", "50", env=self.env)
        return result.stdout[-4000:]


def wait_ready(url: str, stack: Stack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} not ready:\n{stack.logs()}")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    compose = compose_command()
    engine = run("docker", "info").returncode == 0 if find_tool("docker") else False
    base = engine and run("docker", "image", "inspect", BASE_IMAGE).returncode == 0
    if not (compose and engine and base):
        message = f"needs a Docker engine, compose v2 and the base image {BASE_IMAGE}"
        if os.environ.get("MLSHIP_REQUIRE_DOCKER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    env = {
        "BASE_IMAGE": BASE_IMAGE,
        "MLFLOW_PORT": str(free_port()),
        "SCORER_PORT": str(free_port()),
        "SCORER_IMAGE": SCORER_IMAGE,
        "POSTGRES_PASSWORD": uuid.uuid4().hex,
    }
    box = Stack(compose, f"mlship-test-{uuid.uuid4().hex[:8]}", env)
    try:
        box("up", "-d", "--build", "--wait", "postgres", "mlflow")
        yield box
    finally:
        run(*compose, "-p", box.project, "down", "--volumes", "--remove-orphans", env=env)
        run("docker", "rmi", "-f", SCORER_IMAGE)  # rebuilt from a new model every session
        left = run(
            "docker",
            "volume",
            "ls",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={box.project}",
        )
        assert not left.stdout.strip(), f"volumes left behind: {left.stdout}"


@dataclass(frozen=True)
class Trained:
    version: str
    run_id: str
    model_dir: Path


@pytest.fixture(scope="module")
def trained(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    work = tmp_path_factory.mktemp("stack-train")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        # MLflow resolves models:/ downloads (the export after registering) against the
        # process-wide registry URI, so point that at the stack too, as `make stack-serve` does.
        mp.setenv("MLFLOW_TRACKING_URI", stack.tracking_uri)
        result = run_cli(
            "train", "--config", str(BASE_CONFIG), "--env-dir", str(ENV_DIR), "--env", "dev",
            f"data.uri={OJ_CSV}", f"output.model_dir={work / 'model'}",
            f"tracking.uri={stack.tracking_uri}",
        )  # fmt: skip
    assert result.exit_code == 0, result.output + stack.logs()
    info = json.loads((work / "model" / "mlship.json").read_text())
    return Trained(info["version"], info["run_id"], work / "model")


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    frame = pd.read_csv(OJ_CSV).drop(columns=["Purchase", "STORE"])
    return list(frame.head(4).to_dict("records"))


def test_stack_services_are_healthy_and_persistent(stack: Stack) -> None:
    listing = stack("ps", "--format", "{{.Service}} {{.Health}}", "postgres", "mlflow")
    assert sorted(listing.split()) == sorted(["postgres", "healthy", "mlflow", "healthy"]), listing
    assert httpx.get(stack.tracking_uri + "/health", timeout=5).text.strip() == "OK"
    config = json.loads(stack("config", "--format", "json"))
    for name in ("postgres", "mlflow", "scorer"):
        assert "healthcheck" in config["services"][name], name
    mounts = {v["target"] for s in ("postgres", "mlflow") for v in config["services"][s]["volumes"]}
    assert mounts == {"/var/lib/postgresql/data", "/mlartifacts"}
    assert set(config["volumes"]) == {"postgres-data", "mlflow-artifacts"}


def test_training_tracks_to_the_stack(stack: Stack, trained: Trained) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(stack.tracking_uri, registry_uri=stack.tracking_uri)
    version = client.get_model_version_by_alias("oj-purchase", "candidate")
    assert (version.version, version.run_id) == (trained.version, trained.run_id)
    run_ = client.get_run(trained.run_id)
    assert run_.data.metrics["roc_auc"] > 0.85
    assert run_.data.tags["mlship.env"] == "dev" and run_.data.tags["stage"] == "dev"
    # Artifacts went through the server's proxy onto its volume, not into our working dir.
    assert run_.info.artifact_uri.startswith("mlflow-artifacts:/")
    stored = stack("exec", "-T", "mlflow", "find", "/mlartifacts", "-name", "MLmodel")
    assert stored.strip(), "no model artifacts on the MLflow volume"


def test_promotion_gate_and_metrics_summary(stack: Stack, trained: Trained) -> None:
    """The train workflow's gate and job summary, against the stack's server."""
    summary = [sys.executable, str(DEPLOY / "ci" / "metrics_summary.py"), "--name", "oj-purchase"]
    env = {"MLFLOW_TRACKING_URI": stack.tracking_uri}
    before = run(*summary, env=env)
    assert before.returncode == 0, before.stderr
    assert f"candidate (v{trained.version})" in before.stdout and "champion (none)" in before.stdout
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", stack.tracking_uri)
        gate = run_cli(
            "promote", "--name", "oj-purchase", "--alias", "candidate", "--to", "champion",
            "--if-better", "roc_auc", "--tracking-uri", stack.tracking_uri,
        )  # fmt: skip
    assert gate.exit_code == 0 and "promoted" in gate.output, gate.output
    after = run(*summary, "--title", "After", env=env)
    assert f"champion (v{trained.version})" in after.stdout
    roc_row = next(line for line in after.stdout.splitlines() if line.startswith("| roc_auc |"))
    assert "+0.0000 (same)" in roc_row, after.stdout


def test_scorer_built_from_the_registry_answers(
    stack: Stack, trained: Trained, records: list[dict[str, Any]]
) -> None:
    # MLFLOW_TRACKING_URI as well as --tracking-uri: MLflow resolves models:/ downloads
    # against the process-wide registry URI (see docs/operations.md, `make stack-serve`).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", stack.tracking_uri)
        result = run_cli(
            "image", "build", "--model", "models:/oj-purchase@candidate",
            "--tracking-uri", stack.tracking_uri, "--tag", SCORER_IMAGE,
            "--base-image", BASE_IMAGE, "--context", str(ROOT), "--file", str(ROOT / "Dockerfile"),
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    stack("up", "-d", "--no-build", "--wait", "scorer", timeout=180)
    wait_ready(stack.scorer_url + "/ready", stack)
    reply = httpx.post(stack.scorer_url + "/score", json=records, timeout=10)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert len(body["predictions"]) == len(records)
    assert set(body["predictions"]) <= {"CH", "MM"}
    assert body["model"] == {
        "name": "oj-purchase",
        "version": trained.version,
        "run_id": trained.run_id,
    }
    bad = httpx.post(stack.scorer_url + "/score", json=[{"PriceCH": "x"}], timeout=10)
    assert bad.status_code == 422
    smoke = run(
        sys.executable, str(DEPLOY / "ci" / "smoke_test.py"), stack.scorer_url,
        "--expect-model", "oj-purchase", "--timeout", "30",
    )  # fmt: skip
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "smoke ok: oj-purchase v" in smoke.stdout
    container = stack("ps", "-q", "scorer").strip()
    state = json.loads(run("docker", "inspect", container).stdout)[0]
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    assert state["Config"]["User"] == "10001"


@pytest.mark.usefixtures("stack", "trained")
def test_vertex_spec_routes_reach_the_scorer(records: list[dict[str, Any]]) -> None:
    """Run the scorer as Vertex AI would from deploy/vertex/model.json's containerSpec."""
    spec = json.loads((DEPLOY / "vertex" / "model.json").read_text())["containerSpec"]
    port = spec["ports"][0]["containerPort"]
    env = {e["name"]: e["value"] for e in spec.get("env", [])}
    # Vertex AI sets these from the spec (its own values when the routes are unset).
    env |= {
        "AIP_HTTP_PORT": str(port),
        "AIP_PREDICT_ROUTE": spec["predictRoute"],
        "AIP_HEALTH_ROUTE": spec["healthRoute"],
    }
    host_port = free_port()
    env_args = [x for k, v in env.items() for x in ("-e", f"{k}={v}")]
    started = run(
        "docker", "run", "-d", "--read-only", "-p", f"127.0.0.1:{host_port}:{port}",
        *env_args, SCORER_IMAGE,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    url = f"http://127.0.0.1:{host_port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + spec["healthRoute"], timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        reply = httpx.post(url + spec["predictRoute"], json={"instances": records}, timeout=10)
        assert reply.status_code == 200, reply.text
        predictions = reply.json()["predictions"]
        assert len(predictions) == len(records) and {"label", "probabilities"} <= set(
            predictions[0]
        )
    finally:
        run("docker", "rm", "-f", container)


def test_runs_and_models_survive_recreating_the_stack(stack: Stack, trained: Trained) -> None:
    from mlflow import MlflowClient

    stack("rm", "--stop", "--force", "postgres", "mlflow")
    stack("up", "-d", "--wait", "postgres", "mlflow")
    client = MlflowClient(stack.tracking_uri, registry_uri=stack.tracking_uri)
    assert client.get_model_version_by_alias("oj-purchase", "candidate").version == trained.version
    names = {a.path for a in client.list_artifacts(trained.run_id)}
    assert names, "the run's artifacts are gone after recreating the containers"
