"""The scoring image's pins come from uv.lock and carry no training-only library."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SERVE = ROOT / "requirements" / "serve.txt"


def pinned(text: str) -> set[str]:
    return {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", text, re.M)}


def test_serve_requirements_match_the_lock() -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is required (make setup installs it)")
    exported = subprocess.run(
        [
            uv,
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--format",
            "requirements-txt",
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert pinned(exported) == pinned(SERVE.read_text()), "run `make requirements`"
    assert "--hash=sha256:" in SERVE.read_text()


def test_image_installs_no_training_only_library() -> None:
    pins = pinned(SERVE.read_text())
    assert {"scikit-learn", "fastapi", "uvicorn", "orjson"} <= pins
    assert not pins & {"mlflow", "mlflow-skinny", "matplotlib", "s3fs", "gcsfs", "pytest", "skops"}


def test_importing_mlship_loads_nothing_heavy() -> None:
    code = (
        "import sys, mlship, mlship.cli, mlship.config;"
        "heavy = [m for m in ('mlflow', 'sklearn', 'lightgbm', 'matplotlib', 'pandas') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
