"""The VM target (deploy/terraform/vm.tf): an instance template, a regional managed instance
group healed on GET /ready and updated by rolling replacement, booting the scoring image on
Container-Optimized OS or the offline bundle via a startup script. Offline checks only, like
test_terraform.py (checkov covers the template's hardening in test_policy.py)."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.deploy.test_terraform import ENVS, TF, parsed, resources, variables

TEMPLATES = TF / "templates"


def test_group_is_regional_healed_on_ready_and_rolls_without_losing_capacity() -> None:
    check = resources("google_compute_health_check")["vm_ready"]
    assert check["http_health_check"][0]["request_path"] == "/ready"
    assert check["http_health_check"][0]["port"] == "${local.vm_port}"
    group = resources("google_compute_region_instance_group_manager")["scorer"]
    assert "vm_ready" in group["auto_healing_policies"][0]["health_check"]
    assert "instance_template.scorer" in group["version"][0]["instance_template"]
    policy = group["update_policy"][0]
    assert policy["type"] == "PROACTIVE" and policy["minimal_action"] == "REPLACE"
    assert policy["max_unavailable_fixed"] == 0
    assert policy["max_surge_fixed"] >= 3  # a regional group: 0 or at least its zone count
    backend = resources("google_compute_region_backend_service")["scorer"]
    assert backend["load_balancing_scheme"] == "INTERNAL"
    assert "vm_ready" in str(backend["health_checks"])


def test_template_has_no_external_ip_and_boots_what_vm_boot_selects() -> None:
    template = resources("google_compute_instance_template")["scorer"]
    assert "access_config" not in template["network_interface"][0]
    assert template["shielded_instance_config"][0]["enable_secure_boot"] is True
    assert template["service_account"][0]["email"] == "${google_service_account.scorer.email}"
    assert template["lifecycle"][0]["create_before_destroy"] is True
    text = (TF / "vm.tf").read_text()
    assert "cos-cloud/global/images/family/cos-stable" in text
    assert "debian-cloud/global/images/family/debian-12" in text
    boot = variables()["vm_boot"]
    assert "container" in str(boot["validation"]) and "bundle" in str(boot["validation"])


@pytest.mark.parametrize("env", ENVS)
def test_every_environment_says_whether_and_how_it_runs_vms(env: str) -> None:
    values = parsed(TF / "envs" / f"{env}.tfvars")
    assert isinstance(values["vm_enabled"], bool)
    assert values["vm_boot"] in {"container", "bundle"}
    assert 1 <= values["vm_min_replicas"] <= values["vm_max_replicas"]
    if values["vm_boot"] == "bundle":
        assert values["vm_bundle_object"].endswith(".tar.gz")


def _template_vars(text: str) -> set[str]:
    return set(re.findall(r"\$\{(\w+)\}", text))


def test_templates_use_exactly_the_variables_vm_tf_passes() -> None:
    vm = (TF / "vm.tf").read_text()
    for name in ("vm-container.cloud-init.yaml", "vm-bundle-startup.sh"):
        used = _template_vars((TEMPLATES / name).read_text())
        call = vm.split(f'templates/{name}", {{', 1)[1].split("})", 1)[0]
        passed = set(re.findall(r"^\s*(\w+)\s*=", call, re.M))
        assert used == passed, (name, used ^ passed)


def test_cloud_init_is_yaml_with_a_restarting_unit() -> None:
    text = (TEMPLATES / "vm-container.cloud-init.yaml").read_text()
    assert text.startswith("#cloud-config\n")
    rendered = re.sub(r"\$\{(\w+)\}", r"X\1", text)
    config = yaml.safe_load(rendered)
    (unit,) = config["write_files"]
    assert unit["path"] == "/etc/systemd/system/mlship-scorer.service"
    assert "Restart=on-failure" in unit["content"]
    assert "--read-only" in unit["content"] and "--cap-drop ALL" in unit["content"]
    assert "systemctl enable --now mlship-scorer.service" in config["runcmd"]


def test_startup_script_is_valid_bash_that_runs_the_bundle_installer() -> None:
    path = TEMPLATES / "vm-bundle-startup.sh"
    checked = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    text = path.read_text()
    assert "set -euo pipefail" in text
    assert 'install.sh" --activate' in text
