"""Terraform: every file parses (python-hcl2), `terraform fmt` is clean where a binary exists,
and the security properties the design relies on hold. Checkov runs in test_policy.py.
(Providers cannot be downloaded here, so `terraform validate` cannot run.)
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2.utils import SerializationOptions

from tests.deploy.tools import DEPLOY, find_tool, run

TF = DEPLOY / "terraform"
ENVS = ["dev", "test", "prod"]


OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def unquote(value: Any) -> Any:
    """Block labels stay quoted ('"google_storage_bucket"') even with strip_string_quotes."""
    if isinstance(value, dict):
        return {k.strip('"'): unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return value


@cache
def parsed(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return dict(unquote(hcl2.load(handle, serialization_options=OPTIONS)))


def resources(kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(TF.glob("*.tf")):
        for block in parsed(path).get("resource", []):
            for name, body in block.get(kind, {}).items():
                found[name] = body
    return found


def variables() -> dict[str, dict[str, Any]]:
    return {n: b for blk in parsed(TF / "variables.tf")["variable"] for n, b in blk.items()}


@pytest.mark.parametrize("path", sorted(TF.rglob("*.tf*")), ids=lambda p: p.name)
def test_every_file_parses(path: Path) -> None:
    assert parsed(path), f"{path.name} is empty"


def test_terraform_fmt() -> None:
    terraform = find_tool("terraform")
    if terraform is None:
        pytest.skip("no terraform binary on this machine (fmt is the only check that needs it)")
    result = run(terraform, "fmt", "-check", "-recursive", "-diff", str(TF))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("env", ENVS)
def test_tfvars_set_every_required_variable(env: str) -> None:
    values = parsed(TF / "envs" / f"{env}.tfvars")
    declared = variables()
    required = {name for name, body in declared.items() if "default" not in body}
    assert required <= set(values), f"{env}.tfvars misses {required - set(values)}"
    assert set(values) <= set(declared), (
        f"{env}.tfvars sets undeclared {set(values) - set(declared)}"
    )
    assert values["env"] == env
    assert values["project_id"] == f"mlship-{env}"
    assert f"/mlship-{env}/" in values["scorer_image"]


def test_prod_is_protected_and_redundant() -> None:
    prod = parsed(TF / "envs" / "prod.tfvars")
    dev = parsed(TF / "envs" / "dev.tfvars")
    assert prod["deletion_protection"] is True
    assert prod["db_high_availability"] is True
    assert prod["scorer_min_instances"] >= 2 > dev["scorer_min_instances"]


def test_no_keys_and_no_public_principals() -> None:
    text = "\n".join(p.read_text() for p in TF.rglob("*.tf*"))
    assert "google_service_account_key" not in text, "service-account keys are not to exist"
    assert not re.search(r"allUsers|allAuthenticatedUsers", text)


def test_buckets_are_private_uniform_and_versioned() -> None:
    buckets = resources("google_storage_bucket")
    assert {"data", "mlflow_artifacts", "logs"} <= set(buckets)
    for name, body in buckets.items():
        assert body["uniform_bucket_level_access"] is True, name
        assert body["public_access_prevention"] == "enforced", name
        assert body["versioning"][0]["enabled"] is True, name


def test_workload_identity_trusts_one_repository_and_environment() -> None:
    provider = resources("google_iam_workload_identity_pool_provider")["github"]
    assert provider["oidc"][0]["issuer_uri"] == "https://token.actions.githubusercontent.com"
    condition = provider["attribute_condition"]
    assert "repo:${var.github_repository}:environment:${var.env}" in condition
    binding = resources("google_service_account_iam_member")["github_impersonates_deployer"]
    assert binding["role"] == "roles/iam.workloadIdentityUser"
    assert "attribute.repository/${var.github_repository}" in binding["member"]


def test_database_is_private_and_backed_up() -> None:
    settings = resources("google_sql_database_instance")["mlflow"]["settings"][0]
    assert settings["ip_configuration"][0]["ipv4_enabled"] is False
    assert settings["backup_configuration"][0]["point_in_time_recovery_enabled"] is True


def test_project_level_roles_are_few() -> None:
    # Everything else is granted on the bucket, repository, service or secret itself.
    allowed = {"roles/aiplatform.user", "roles/logging.logWriter", "roles/monitoring.metricWriter"}
    bindings = resources("google_project_iam_member")
    named = {role for body in bindings.values() for role in re.findall(r"roles/[\w.]+", str(body))}
    assert named
    assert named <= allowed, named - allowed
    for name, body in bindings.items():
        assert body["role"] in allowed or body["role"].startswith("${each."), name


def test_scorer_serves_the_image_contract() -> None:
    scorer = resources("google_cloud_run_v2_service")["scorer"]
    container = scorer["template"][0]["containers"][0]
    assert container["ports"][0]["container_port"] == 8888
    assert container["startup_probe"][0]["http_get"][0]["path"] == "/ready"
    assert container["liveness_probe"][0]["http_get"][0]["path"] == "/health"
    ignored = scorer["lifecycle"][0]["ignore_changes"]
    assert any("image" in str(item) for item in ignored), "cd.yml owns the image"


def test_scorer_drains_within_cloud_runs_sigterm_budget() -> None:
    # Cloud Run SIGKILLs 10 s after SIGTERM; the service's own grace must end before that.
    container = resources("google_cloud_run_v2_service")["scorer"]["template"][0]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert 0 < int(env["MLSHIP_GRACE_SECONDS"]) <= 8


def test_request_log_bucket_is_written_by_the_scorer_and_read_by_the_monitor_only() -> None:
    members = resources("google_storage_bucket_iam_member")
    on_requests = {n: b for n, b in members.items() if "requests" in b["bucket"]}
    assert {b["role"]: b["member"] for b in on_requests.values()} == {
        # Cloud Storage FUSE looks objects up and renames the finished file (copy + delete)
        "roles/storage.objectUser": "${google_service_account.scorer.member}",
        "roles/storage.objectViewer": "${google_service_account.monitor.member}",
    }
    rules = resources("google_storage_bucket")["requests"]["lifecycle_rule"]
    assert rules[0]["condition"][0]["age"] == "${var.request_log_retention_days}"
    assert rules[1]["condition"][0]["days_since_noncurrent_time"] == 7  # the temporary names


def monitoring_locals() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for block in parsed(TF / "monitoring.tf").get("locals", []):
        found |= block
    return found


def test_scorer_logs_requests_as_files_into_the_mounted_bucket_when_asked() -> None:
    # The images carry no pyarrow or fsspec: CSV files, to a folder that is the bucket.
    template = resources("google_cloud_run_v2_service")["scorer"]["template"][0]
    names = monitoring_locals()
    assert names["request_logging"] == "${var.request_log_sample_rate > 0}"
    on = "${local.request_logging ? [1] : []}"
    assert template["execution_environment"] == (
        '${local.request_logging ? "EXECUTION_ENVIRONMENT_GEN2" : null}'
    )  # Cloud Storage volumes exist in gen2 only
    volume = template["dynamic"][0]["volumes"]
    assert volume["for_each"] == on
    gcs = volume["content"][0]["gcs"][0]
    assert gcs == {"bucket": "${google_storage_bucket.requests.name}", "read_only": False}
    container = template["containers"][0]
    dynamic = {name: body for item in container["dynamic"] for name, body in item.items()}
    mount = dynamic["volume_mounts"]
    assert mount["for_each"] == on
    assert mount["content"][0] == {"name": volume["content"][0]["name"],
                                   "mount_path": "${local.request_log_mount}"}  # fmt: skip
    assert dynamic["env"]["for_each"] == "${local.request_log_env}"
    env = names["request_log_env"]
    assert "local.request_logging ?" in env and "MLSHIP_LOG_SAMPLE_RATE" in env
    # a folder under the mount, the very prefix monitor.yml reads (request_log_uri)
    assert '"${local.request_log_mount}/${var.model_name}"' in env
    assert names["request_log_uri"].endswith("/${var.model_name}/")
    assert names["request_log_mount"] == "/requests"
    assert variables()["request_log_sample_rate"]["default"] == 0  # feature values: opt in


def test_the_monitor_pool_trusts_its_own_environment_and_account_only() -> None:
    provider = resources("google_iam_workload_identity_pool_provider")["github_monitor"]
    condition = provider["attribute_condition"]
    assert "repo:${var.github_repository}:environment:${var.env}-monitor'" in condition
    bindings = resources("google_service_account_iam_member")
    monitor = bindings["github_impersonates_monitor"]
    assert "github_monitor.name" in monitor["member"]
    assert monitor["service_account_id"] == "${google_service_account.monitor.name}"
    # the deployer stays reachable from the reviewed pool only
    assert "github_monitor" not in bindings["github_impersonates_deployer"]["member"]
