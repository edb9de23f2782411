"""A model whose pickle needs a package the install lacks: one error naming that package
(an XGBoost model in the scikit-learn image, a scikit-learn model where only ONNX is)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LOAD_WITHOUT = """
import sys
sys.modules[sys.argv[2]] = None  # importing it now fails as on an install without it
from mlship.errors import MlshipError
from mlship.scoring.predictor import Predictor
try:
    Predictor.load(sys.argv[1], runtime="sklearn")
except MlshipError as exc:
    print(exc)
    raise SystemExit(3)
"""


def test_the_sklearn_runtime_names_the_package_the_model_needs(trained_oj: Path) -> None:
    model_dir = str(trained_oj / "model")
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT, model_dir, "sklearn"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 3, loaded.stderr
    assert "needs the Python package 'sklearn', which this install lacks" in loaded.stdout
    assert "Traceback" not in loaded.stdout + loaded.stderr
