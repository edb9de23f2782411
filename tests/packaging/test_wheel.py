"""The wheel as a product: what ``uv build`` ships, and that ``pip install 'mlship[onnx]'`` into
a fresh venv (from the package index) serves a trained model like ``mlship predict`` scores it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.request
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import OJ_CSV, ROOT, run_cli
from tests.services import HOST, free_port, http_ok, running

pytestmark = pytest.mark.slow

EXTRAS = {"onnx", "sklearn", "batch", "train", "spark", "dask"}
ROWS = 25


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is required (make setup installs it)")
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [uv, "build", "--out-dir", str(out), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("mlship-*-py3-none-any.whl")
    return found


def test_twine_check_passes(dist: Path) -> None:
    files = sorted(str(p) for p in dist.iterdir() if p.suffix in {".whl", ".gz"})
    assert len(files) == 2, files  # an sdist and a wheel
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_wheel_ships_the_package_only_with_extras_and_the_console_script(wheel: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"mlship-{project['version']}.dist-info"
        metadata = Parser().parsestr(archive.read(f"{info}/METADATA").decode())
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"mlship", info}, tops
    assert not [n for n in names if re.search(r"(^|/)(tests?|data)/", n)]
    assert not [n for n in names if n.endswith((".csv", ".parquet", ".ipynb", ".db"))]
    assert metadata["Version"] == project["version"]  # the one place: pyproject.toml
    assert set(metadata.get_all("Provides-Extra") or []) >= EXTRAS
    assert metadata["Requires-Python"]
    console = entry_points.split("[console_scripts]", 1)[1]
    assert re.search(r"^mlship = \S+:\S+$", console, re.M), entry_points


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with ``pip install 'mlship[onnx]'`` from the wheel and the package index."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", f"{wheel}[onnx]"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return venv


def test_pip_installed_wheel_serves_like_mlship_predict(
    fresh_venv: Path, trained_oj: Path, tmp_path: Path
) -> None:
    python = str(fresh_venv / "bin" / "python")
    absent = subprocess.run(
        [python, "-c", "import importlib.util as u; "
         "print([m for m in ('sklearn', 'scipy', 'pandas', 'mlflow') if u.find_spec(m)])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert absent == "[]"  # the onnx extra serves without the training stack

    model = trained_oj / "model"
    rows = pd.read_csv(OJ_CSV).head(ROWS)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    predicted = run_cli("predict", "-m", str(model), "-i", str(tmp_path / "rows.csv"),
                        "-o", str(tmp_path / "scores.parquet"))  # fmt: skip
    assert predicted.exit_code == 0, predicted.output
    want = pd.read_parquet(tmp_path / "scores.parquet")

    port = free_port()
    url = f"http://{HOST}:{port}"
    cmd = [str(fresh_venv / "bin" / "mlship"), "serve", "--model", str(model),
           "--host", HOST, "--port", str(port)]  # fmt: skip
    with running("mlship serve (pip-installed wheel)", cmd, log_path=tmp_path / "serve.log",
                 ready=lambda: http_ok(f"{url}/ready"), timeout=60, cwd=tmp_path,
                 env={"MLSHIP_RUNTIME": None}):  # fmt: skip
        meta = _get(f"{url}/metadata")
        columns = [str(c["name"]) for c in meta["signature"]]
        reply = _post(f"{url}/score", rows[columns].to_json(orient="records").encode())
    assert meta["runtime"] == "onnx"
    assert reply["predictions"] == want["prediction"].tolist()
    for label in ("CH", "MM"):
        got = [p[label] for p in reply["probabilities"]]
        assert max(abs(a - b) for a, b in zip(got, want[f"proba_{label}"], strict=True)) < 1e-5


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.loads(response.read()))


def _post(url: str, body: bytes) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))
