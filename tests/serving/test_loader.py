"""The serving process settles its heap once the model is loaded; an app built elsewhere (a
test, a notebook) leaves the process's collector alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlship.serving.loader import YOUNG_THRESHOLD
from tests.conftest import ROOT

CHILD = textwrap.dedent(
    """
    import gc, json, sys, time
    from fastapi.testclient import TestClient
    from mlship.serving.app import create_app
    from mlship.serving.settings import ServeSettings
    from mlship.serving.worker import app_from_env

    app = app_from_env() if sys.argv[1] == "worker" else create_app(ServeSettings())
    with TestClient(app) as client:
        for _ in range(600):
            if client.get("/ready").status_code == 200:
                break
            time.sleep(0.1)
        ready = client.get("/ready").status_code
    print(json.dumps({"ready": ready, "frozen": gc.get_freeze_count(),
                      "young": gc.get_threshold()[0]}))
    """
)


def child(model: Path, how: str) -> dict[str, int]:
    env = {**os.environ, "MLSHIP_MODEL_DIR": str(model)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, how], capture_output=True, text=True, cwd=ROOT, env=env,
        check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.parametrize("how", ["worker", "app"])
def test_only_the_serving_process_freezes_its_heap(trained_oj: Path, how: str) -> None:
    out = child(trained_oj / "model", how)
    assert out["ready"] == 200
    if how == "worker":  # the imports and the model: tens of thousands of objects
        assert out["frozen"] > 10_000 and out["young"] == YOUNG_THRESHOLD
    else:
        assert out["frozen"] == 0 and out["young"] != YOUNG_THRESHOLD
