"""The scoring image's pins come from uv.lock and carry no training-only library."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

REQUIREMENTS = ROOT / "requirements"
TRAINING_ONLY = {"mlflow", "mlflow-skinny", "matplotlib", "s3fs", "gcsfs", "pytest", "skl2onnx"}


def pinned(text: str) -> set[str]:
    return {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", text, re.M)}


@pytest.mark.parametrize(
    ("path", "extra"),
    [("serve-sklearn.txt", "sklearn"), ("serve-onnx.txt", "onnx"), ("train.txt", "train")],
)
def test_image_requirements_match_the_lock(path: str, extra: str) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is required (make setup installs it)")
    exported = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--extra", extra, "--no-emit-project",
         "--format", "requirements-txt", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    text = (REQUIREMENTS / path).read_text()
    assert pinned(exported) == pinned(text), "run `make requirements`"
    assert "--hash=sha256:" in text


def test_serving_images_install_no_training_only_library() -> None:
    sklearn = pinned((REQUIREMENTS / "serve-sklearn.txt").read_text())
    onnx = pinned((REQUIREMENTS / "serve-onnx.txt").read_text())
    assert {"scikit-learn", "fastapi", "uvicorn", "orjson"} <= sklearn
    assert {"onnxruntime", "fastapi", "uvicorn", "orjson"} <= onnx
    assert not (sklearn | onnx) & TRAINING_ONLY
    assert not onnx & {"scikit-learn", "scipy", "pandas", "lightgbm"}


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


def test_the_version_has_one_source() -> None:
    """pyproject.toml sets it; the package, `mlship --version` and model dirs report it."""
    import tomllib

    from mlship import __version__
    from tests.conftest import run_cli

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert __version__ == declared
    result = run_cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"mlship {declared}"
