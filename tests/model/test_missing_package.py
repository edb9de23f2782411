"""A model whose pickle needs a package the install lacks: one error naming that package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli, train_args

pytestmark = pytest.mark.slow

LOAD_WITHOUT = """
import sys
sys.modules["xgboost"] = None  # `import xgboost` now fails as on an install without it
from mlship.errors import MlshipError
from mlship.scoring.predictor import Predictor
try:
    Predictor.load(sys.argv[1], runtime="sklearn")
except MlshipError as exc:
    print(exc)
    raise SystemExit(3)
"""


def test_sklearn_runtime_names_the_package_an_xgboost_model_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    params = ["model.params.xgboost.n_estimators=20", "model.params.xgboost.max_depth=3"]
    result = run_cli(*train_args(tmp_path, "model.name=xgboost", *params))
    assert result.exit_code == 0, result.output
    model_dir = str(tmp_path / "model")
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT, model_dir], capture_output=True, text=True, timeout=120
    )
    assert loaded.returncode == 3, loaded.stderr
    assert "needs the Python package 'xgboost', which this install lacks" in loaded.stdout
    assert "Traceback" not in loaded.stdout + loaded.stderr
