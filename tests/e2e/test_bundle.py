"""The offline VM bundle as an operator meets it: ``mlship bundle``, then, in a clean container
of the base image with no network at all, unpack, ``install.sh``, start the unit's
``ExecStart`` line as an unprivileged user, ``POST /score`` and compare with ``mlship predict``;
install a second version beside it, switch and roll back; ``systemd-analyze verify`` the unit.

systemd itself does not run in the container (it is not PID 1 there); the unit is checked
offline by ``systemd-analyze`` on this machine, where systemd is installed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import OJ_CSV, run_cli

BASE_IMAGE = os.environ.get("MLSHIP_TEST_BASE_IMAGE", "mlship-base:bookworm")
pytestmark = [pytest.mark.docker, pytest.mark.slow]
MODEL = "oj-purchase"
ROOT_DIR = f"/opt/mlship/{MODEL}"
UNIT = f"mlship-{MODEL}.service"
ROWS = 25
HARDENING = {
    "DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
    "Restart=on-failure", "ProtectHome=yes", "CapabilityBoundingSet=",
}  # fmt: skip


def docker(
    *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        pytest.fail(f"docker {' '.join(args[:3])}... failed:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module", autouse=True)
def need_docker() -> None:
    try:
        ready = docker("info", check=False).returncode == 0
    except FileNotFoundError:
        ready = False
    if ready and docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0:
        return
    message = f"no Docker engine or no base image {BASE_IMAGE} (see scripts/)"
    if os.environ.get("MLSHIP_REQUIRE_DOCKER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True)
class Bundles:
    dir: Path  # mounted read-only at /bundle in the container
    v1: Path
    v2: Path
    seconds: float

    def member(self, bundle: Path, name: str) -> str:
        with tarfile.open(bundle) as archive:
            handle = archive.extractfile(f"{bundle.name.removesuffix('.tar.gz')}/{name}")
            assert handle is not None
            return handle.read().decode()

    def names(self, bundle: Path) -> list[str]:
        with tarfile.open(bundle) as archive:
            return archive.getnames()

    def files(self, bundle: Path) -> set[str]:
        """Regular files, relative to the bundle's top directory."""
        with tarfile.open(bundle) as archive:
            return {m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile()}


@pytest.fixture(scope="module")
def bundles(trained_oj: Path, tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    out = tmp_path_factory.mktemp("bundles")
    v1 = out / f"{MODEL}-1.tar.gz"
    start = time.monotonic()
    made = run_cli("bundle", "--model", str(trained_oj / "model"), "--output", str(v1))
    seconds = time.monotonic() - start
    assert made.exit_code == 0, made.output
    assert "runtime onnx" in made.stdout
    print(f"\nbundle: {v1.stat().st_size / 1e6:.1f} MB, built in {seconds:.1f} s")

    # Version 2: the same model registered again (as the next training would register it), in
    # a copy of the session's tracking store, and bundled straight from the registry; it
    # ships bundle 1's mlship wheel (--wheel) instead of building another.
    store = out / "mlruns.db"
    shutil.copy(trained_oj / "mlruns.db", store)
    tracking = f"sqlite:///{store}"
    _register_again(tracking, MODEL)
    with tarfile.open(v1) as archive:
        (wheel_name,) = [n for n in archive.getnames() if re.search(r"/mlship-[^/]+\.whl$", n)]
        archive.extract(wheel_name, out / "wheel", filter="data")
    v2 = out / f"{MODEL}-2.tar.gz"
    made = run_cli("bundle", "--model", f"models:/{MODEL}/2", "--tracking-uri", tracking,
                   "--output", str(v2), "--wheel", str(out / "wheel" / wheel_name))  # fmt: skip
    assert made.exit_code == 0, made.output

    rows = pd.read_csv(OJ_CSV).head(ROWS)
    rows.to_csv(out / "rows.csv", index=False)
    (out / "rows.json").write_text(rows.to_json(orient="records"))
    out.chmod(0o755)
    return Bundles(out, v1, v2, seconds)


def _register_again(tracking_uri: str, name: str) -> None:
    """Register version 1's model once more, as version 2 (MLflow's client, in a subprocess
    so this process's MLflow state stays as it was)."""
    code = (
        "import mlflow, sys; c = mlflow.MlflowClient(); v = c.get_model_version(sys.argv[1], '1');"
        "print(c.create_model_version(sys.argv[1], v.source, run_id=v.run_id).version)"
    )
    done = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True,
                          env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}, timeout=120)  # fmt: skip
    assert done.stdout.strip() == "2", done.stderr[-2000:]


@pytest.fixture(scope="module")
def container(bundles: Bundles) -> Iterator[str]:
    """A clean base-image container with no network at all; the bundles at /bundle (ro)."""
    name = f"mlship-bundle-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--rm", "--network", "none", "--name", name,
           "-v", f"{bundles.dir}:/bundle:ro", BASE_IMAGE, "sleep", "900")  # fmt: skip
    try:
        yield name
    finally:
        docker("rm", "-f", name, check=False)


def sh(container: str, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return docker("exec", container, "bash", "-euo", "pipefail", "-c", script, check=check)


@pytest.fixture(scope="module")
def installed(container: str) -> float:
    """Bundle 1 unpacked and installed (``install.sh --activate``); returns its install time."""
    offline = sh(container, "python3 -c \"import socket; socket.create_connection(('pypi.org', 443), 3)\"",
                 check=False)  # fmt: skip
    assert offline.returncode != 0, "the container reached the network"
    start = time.monotonic()
    done = sh(
        container,
        f"cd /root && tar -xzf /bundle/{MODEL}-1.tar.gz && ./{MODEL}-1/install.sh --activate",
    )
    seconds = time.monotonic() - start
    assert "current -> 1 (previous: none)" in done.stdout, done.stdout + done.stderr
    print(f"\nbundle install (offline, in {BASE_IMAGE}): {seconds:.1f} s")
    return seconds


def exec_start(container: str) -> list[str]:
    """The installed unit's ExecStart, with its EnvironmentFile's variables filled in."""
    unit = sh(container, f"cat /etc/systemd/system/{UNIT}").stdout
    env: dict[str, str] = {}
    for line in unit.splitlines():
        if line.startswith("EnvironmentFile="):
            path = line.split("=", 1)[1]
            text = sh(container, f"cat {path.lstrip('-')} 2>/dev/null || true").stdout
            if not path.startswith("-"):
                assert text, f"{path} is missing"
            env.update(dict(kv.split("=", 1) for kv in text.splitlines() if kv and kv[0] != "#"))
    (command,) = [
        line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")
    ]
    return [re.sub(r"\$\{(\w+)\}", lambda m: env[m[1]], word) for word in shlex.split(command)]


HTTP = """
import json, sys, time, urllib.request
base = "http://127.0.0.1:8888"
deadline = time.monotonic() + 90
while True:
    try:
        urllib.request.urlopen(base + "/ready", timeout=2).read()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("not ready after 90 s")
        time.sleep(0.25)
meta = json.loads(urllib.request.urlopen(base + "/metadata", timeout=10).read())
columns = [c["name"] for c in meta["signature"]]
rows = [{k: r[k] for k in columns} for r in json.load(open("/bundle/rows.json"))]
request = urllib.request.Request(base + "/score", data=json.dumps(rows).encode(),
                                 headers={"Content-Type": "application/json"})
reply = json.loads(urllib.request.urlopen(request, timeout=30).read())
print(json.dumps({"metadata": meta, "reply": reply}))
"""


def test_bundle_holds_exactly_what_the_vm_needs(bundles: Bundles) -> None:
    names = bundles.names(bundles.v1)
    top = f"{MODEL}-1"
    assert {n.split("/", 1)[0] for n in names} == {top}
    for part in ("install.sh", "activate", "mlship.env", UNIT, "README.md", "bundle.json",
                 "SHA256SUMS", "requirements.txt", "model/MLmodel", "model/extra_files/model.onnx"):  # fmt: skip
        assert f"{top}/{part}" in names, part
    wheels = {n.rsplit("/", 1)[1].split("-", 1)[0].lower() for n in names if n.endswith(".whl")}
    assert {"onnxruntime", "fastapi", "uvicorn", "numpy", "mlship", "pip"} <= wheels
    assert not wheels & {"scikit_learn", "scipy", "pandas", "mlflow", "lightgbm"}
    requirements = [line for line in bundles.member(bundles.v1, "requirements.txt").splitlines()
                    if line and not line.startswith("#")]  # fmt: skip
    assert all("--hash=sha256:" in line for line in requirements)
    assert len(requirements) == len(wheels) - 1  # every wheel but pip is pinned and hashed
    summed = {
        line.split("  ", 1)[1] for line in bundles.member(bundles.v1, "SHA256SUMS").splitlines()
    }
    assert summed == bundles.files(bundles.v1) - {"SHA256SUMS"}
    unit = bundles.member(bundles.v1, UNIT)
    assert set(unit.splitlines()) >= HARDENING
    assert re.search(r"^MemoryMax=\S+$", unit, re.M)
    manifest = json.loads(bundles.member(bundles.v1, "bundle.json"))
    assert (manifest["runtime"], manifest["version"], manifest["python"]) == ("onnx", "1", "3.11")


@pytest.mark.usefixtures("installed")
def test_installed_offline_the_unit_serves_like_mlship_predict(
    container: str, bundles: Bundles
) -> None:
    command = exec_start(container)
    assert command[0] == f"{ROOT_DIR}/current/venv/bin/mlship"
    # DynamicUser=yes runs the service as an unprivileged user of its own: nobody here.
    docker("exec", "-d", container, "setpriv", "--reuid=65534", "--regid=65534",
           "--clear-groups", "--no-new-privs", *command)  # fmt: skip
    scored = json.loads(docker("exec", container, "python3", "-c", HTTP, timeout=180).stdout)
    meta, reply = scored["metadata"], scored["reply"]
    assert (meta["runtime"], reply["model"]["version"]) == ("onnx", "1")

    predicted = run_cli("predict", "-m", str(_host_model(bundles)), "-i", str(bundles.dir / "rows.csv"),
                        "-o", str(bundles.dir / "scores.parquet"))  # fmt: skip
    assert predicted.exit_code == 0, predicted.output
    want = pd.read_parquet(bundles.dir / "scores.parquet")
    assert reply["predictions"] == want["prediction"].tolist()
    for label in ("CH", "MM"):
        got = [p[label] for p in reply["probabilities"]]
        assert max(abs(a - b) for a, b in zip(got, want[f"proba_{label}"], strict=True)) < 1e-5
    owner = sh(container, "ps -o user= -C mlship | sort -u || true").stdout.split()
    assert owner in ([], ["nobody"]), owner  # (ps may be missing from a minimal base)


def _host_model(bundles: Bundles) -> Path:
    unpacked = bundles.dir / "unpacked"
    if not unpacked.exists():
        with tarfile.open(bundles.v1) as archive:
            archive.extractall(unpacked, filter="data")
    return unpacked / f"{MODEL}-1" / "model"


@pytest.mark.usefixtures("installed")
def test_a_second_version_installs_beside_switches_and_rolls_back(container: str) -> None:
    def links() -> tuple[str, str]:
        out = sh(
            container, f"readlink {ROOT_DIR}/current; readlink {ROOT_DIR}/previous || true"
        ).stdout
        current, previous = ([*out.split(), ""])[:2]
        return current, previous

    again = sh(container, f"/root/{MODEL}-1/install.sh")
    assert "already installed" in again.stdout
    sh(container, f"cd /root && tar -xzf /bundle/{MODEL}-2.tar.gz && ./{MODEL}-2/install.sh")
    assert links()[0] == "1"  # installed beside, not switched
    assert "current -> 2 (previous: 1)" in sh(container, f"{ROOT_DIR}/2/activate").stdout
    assert links() == ("2", "1")
    rollback = sh(container, f"{ROOT_DIR}/previous/activate")  # the one-command rollback
    assert "current -> 1 (previous: 2)" in rollback.stdout
    assert links() == ("1", "2")
    meta = sh(container, f"cat {ROOT_DIR}/current/bundle.json").stdout
    assert json.loads(meta)["version"] == "1"


def test_unit_passes_systemd_analyze(bundles: Bundles, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    units = Path("/usr/lib/systemd/system")
    if analyze is None or not units.is_dir():
        pytest.skip("systemd is not installed here (apt-get install systemd)")
    # An alternate root holding the unit, the system's own units, and the ExecStart binary.
    root = tmp_path / "root"
    shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system" / UNIT).write_text(bundles.member(bundles.v1, UNIT))
    binary = root / f"opt/mlship/{MODEL}/1/venv/bin/mlship"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (root / f"opt/mlship/{MODEL}/current").symlink_to("1")
    verify = subprocess.run([analyze, "verify", "--man=no", f"--root={root}", UNIT],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = subprocess.run([analyze, "security", "--offline=true", f"--root={root}", UNIT],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    level = re.search(
        r"Overall exposure level for \S+: ([\d.]+)", security.stdout + security.stderr
    )
    assert level, security.stdout[-500:] + security.stderr[-500:]
    print(f"\nsystemd-analyze security exposure: {level[1]} (0 safest, 10 exposed)")
    assert float(level[1]) <= 2.5
