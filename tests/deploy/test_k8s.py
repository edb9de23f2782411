"""Kubernetes manifests: each overlay renders, validates against the API schemas (strict,
offline) and keeps the security and probe settings; the KServe spec fits the image.
Checkov scans the rendered overlays in test_policy.py.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.tools import DEPLOY, need_tool, run

K8S = DEPLOY / "k8s"
ENVS = ["dev", "test", "prod"]
KUBE_VERSION = "1.33.0"


@cache
def render(overlay: Path) -> tuple[dict[str, Any], ...]:
    kubectl = need_tool("kubectl", "renders the kustomize overlays")
    result = run(kubectl, "kustomize", str(overlay))
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def by_kind(docs: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    kinds = [d["kind"] for d in docs]
    assert len(kinds) == len(set(kinds)), kinds
    return {d["kind"]: d for d in docs}


@pytest.mark.parametrize("env", ENVS)
def test_overlay_renders_and_validates_strictly(env: str) -> None:
    docs = render(K8S / "overlays" / env)
    assert {d["kind"] for d in docs} == {
        "ServiceAccount", "Deployment", "Service", "HorizontalPodAutoscaler",
        "PodDisruptionBudget", "NetworkPolicy",
    }  # fmt: skip
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        assert doc["metadata"]["namespace"] == f"mlship-{env}"
        assert doc["metadata"]["labels"]["mlship.ai/env"] == env


def test_strict_validation_rejects_a_misspelt_field() -> None:
    deployment = by_kind(render(K8S / "overlays" / "dev"))["Deployment"]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("env", ENVS)
def test_deployment_is_probed_limited_and_locked_down(env: str) -> None:
    kinds = by_kind(render(K8S / "overlays" / env))
    deployment = kinds["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    image = container["image"]
    assert image.startswith(f"europe-west1-docker.pkg.dev/mlship-{env}/mlship/oj-purchase:")
    # The Service, HPA, PDB and NetworkPolicy all point at these pods.
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [
        kinds["Service"]["spec"]["selector"],
        kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        kinds["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= labels.items(), selector
    assert (
        kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"]
        == (deployment["metadata"]["name"])
    )
    port = container["ports"][0]
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == port["name"]


SERVICE_GRACE_S = 20  # mlship serve's default grace after SIGTERM (--grace-seconds)


def prestop_sleep_seconds(container: dict[str, Any]) -> int:
    """Seconds the container's preStop hook waits: `sleep N` (exec) or the native sleep action."""
    pre_stop = container["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert command[0] in {"sleep", "/bin/sleep", "/usr/bin/sleep"}, command
    return int(command[1])


def assert_drains(pod: dict[str, Any], container: dict[str, Any]) -> None:
    """preStop first (the endpoint leaves the Service), then SIGTERM and the service's grace,
    all within terminationGracePeriodSeconds, which the kubelet counts from preStop's start."""
    pre_stop = prestop_sleep_seconds(container)
    assert 1 <= pre_stop <= 15, pre_stop
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    service_grace = max(SERVICE_GRACE_S, int(env.get("MLSHIP_GRACE_SECONDS", SERVICE_GRACE_S)))
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > pre_stop + service_grace, (grace, pre_stop, service_grace)


@pytest.mark.parametrize("env", ENVS)
def test_pods_drain_before_they_are_killed(env: str) -> None:
    pod = by_kind(render(K8S / "overlays" / env))["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert_drains(pod, container)


def test_drain_check_rejects_a_budget_that_ends_inside_the_grace_period() -> None:
    pod = by_kind(render(K8S / "overlays" / "dev"))["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    short = {**pod, "terminationGracePeriodSeconds": prestop_sleep_seconds(container) + 20}
    with pytest.raises(AssertionError):
        assert_drains(short, container)


def test_environments_scale_up_towards_prod() -> None:
    def sizes(env: str) -> tuple[int, int, int]:
        kinds = by_kind(render(K8S / "overlays" / env))
        hpa = kinds["HorizontalPodAutoscaler"]["spec"]
        return kinds["Deployment"]["spec"]["replicas"], hpa["minReplicas"], hpa["maxReplicas"]

    dev, test, prod = (sizes(env) for env in ENVS)
    for replicas, low, high in (dev, test, prod):
        assert low <= replicas <= high
    assert dev[0] < test[0] < prod[0]
    assert dev[2] < test[2] < prod[2]
    pdb = by_kind(render(K8S / "overlays" / "prod"))["PodDisruptionBudget"]["spec"]
    assert pdb["minAvailable"] < prod[1], "the budget must leave room to drain a node"


def test_kserve_inference_service_matches_the_image_contract() -> None:
    (isvc,) = yaml.safe_load_all((K8S / "kserve" / "inferenceservice.yaml").read_text())
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    predictor = isvc["spec"]["predictor"]
    (container,) = predictor["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    port = container["ports"][0]["containerPort"]
    args = container["args"]
    assert args[args.index("--port") + 1] == str(port)
    # KServe's v1 and v2 routes are the image's own: no Vertex AI variables as a workaround.
    assert not [key for key in env if key.startswith("AIP_")]
    name = isvc["metadata"]["name"]
    assert name == "oj-purchase"  # the registered model's name, which the v1/v2 routes expect
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": port}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert predictor["securityContext"]["runAsNonRoot"] is True
    assert predictor["minReplicas"] <= predictor["maxReplicas"]
    assert_drains(predictor, container)
    # The embedded pod fields are real Kubernetes fields: validate them as a Pod.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": predictor["containers"],
            "securityContext": predictor["securityContext"],
            "serviceAccountName": predictor["serviceAccountName"],
            "terminationGracePeriodSeconds": predictor["terminationGracePeriodSeconds"],
        },
    }
    kubernetes_validate.validate(pod, KUBE_VERSION, strict=True)
