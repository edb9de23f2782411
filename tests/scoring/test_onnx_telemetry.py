"""onnxruntime's usage telemetry stays off wherever mlship loads it: serving an ONNX twin
leaves no device id in the home dir (nothing is sent from a scoring service unasked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import ROOT

CHILD = textwrap.dedent(
    """
    import json, os, sys
    from mlship.scoring.predictor import Predictor

    predictor = Predictor.load(sys.argv[1], runtime="onnx")
    print(json.dumps({"runtime": predictor.runtime,
                      "variable": os.environ.get("ORT_DISABLE_TELEMETRY")}))
    """
)


def test_an_onnx_predictor_writes_no_telemetry_id(trained_oj: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env |= {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(trained_oj / "model")],
        capture_output=True, text=True, cwd=ROOT, env=env, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"runtime": "onnx", "variable": "1"}
    assert "telemetry" not in done.stderr
    assert not list(home.rglob("*")), sorted(map(str, home.rglob("*")))
