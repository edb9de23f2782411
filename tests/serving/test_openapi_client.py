"""A Python client generated from the served ``/openapi.json`` scores OJ rows against a real
``mlship serve``, and predicts what ``mlship predict`` and ``POST /score`` predict.

``openapi-python-client`` is no dependency of ours: it is installed, pinned, in a throwaway
venv, generates the client from the live server's document, and the generated package is
installed into that venv and imported by ``clients/openapi_generated.py``, which calls
``score.sync(client=..., body=[Record, ...])`` as a user of the client would.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests import venvs
from tests.conftest import OJ_CSV, run_cli
from tests.serving.live import JSON, Live, exchange, live_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GENERATOR = "openapi-python-client==0.29.1"
PACKAGE = "mlship_scoring_service_client"
SCRIPT = Path(__file__).with_name("clients") / "openapi_generated.py"
TOLERANCE = 1e-9


def _env() -> dict[str, str]:
    """The runner's environment without what would mix the project's packages in."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(*command: str, cwd: Path | None = None, timeout: float = 600) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the pinned generator (and, later, the generated client)."""
    root = tmp_path_factory.mktemp("openapi-client") / "venv"
    python = venvs.create(root, _env())
    _run(*venvs.install_command(python), GENERATOR)
    return root


@pytest.fixture(scope="module")
def server(trained_oj: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(trained_oj / "model", tmp_path_factory.mktemp("openapi-serve")) as live:
        yield live


@pytest.fixture(scope="module")
def generated(venv: Path, server: Live, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client generated from the live document, installed into the venv."""
    work = tmp_path_factory.mktemp("generated")
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/openapi.json") as reply:
        (work / "spec.json").write_bytes(reply.read())
    # Warnings are expected and harmless: the generator skips the text/csv and JSON Lines
    # bodies it has no support for, and keeps the JSON ones.
    _run(str(venv / "bin" / "openapi-python-client"), "generate", "--path", "spec.json",
         cwd=work)  # fmt: skip
    project = next(p for p in work.iterdir() if (p / PACKAGE).is_dir())
    _run(*venvs.install_command(venv / "bin" / "python"), str(project))
    return project / PACKAGE


def test_the_generated_client_is_typed(generated: Path) -> None:
    score = (generated / "api" / "scoring" / "score.py").read_text()
    assert "list[Record]" in score and "InstancesRequest" in score, "score takes a typed body"
    record = (generated / "models" / "record.py").read_text()
    assert "price_ch: float" in record and "store_id: str" in record
    assert (generated / "models" / "class_probabilities.py").exists()


@pytest.mark.usefixtures("generated")  # installed into the venv before the script imports it
def test_generated_client_scores_like_mlship_predict(
    venv: Path, server: Live, trained_oj: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(OJ_CSV).drop(columns=["Purchase", "STORE"])
    typed = frame.assign(StoreID=frame["StoreID"].astype(str))  # categories are text
    rows: list[dict[str, Any]] = typed.to_dict(orient="records")
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    base = f"http://127.0.0.1:{server.port}"
    reply = json.loads(_run(str(venv / "bin" / "python"), str(SCRIPT), base, "rows.json",
                            cwd=tmp_path).strip().splitlines()[-1])  # fmt: skip

    frame.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "predicted.csv"
    done = run_cli("predict", "-m", str(trained_oj / "model"), "-i", str(tmp_path / "rows.csv"),
                   "-o", str(out))  # fmt: skip
    assert done.exit_code == 0, done.output
    predicted = pd.read_csv(out, keep_default_na=False)
    assert reply["predictions"] == predicted["prediction"].tolist()
    for cls in ("CH", "MM"):
        ours = pd.Series([p[cls] for p in reply["probabilities"]])
        assert (ours - predicted[f"proba_{cls}"]).abs().max() <= TOLERANCE, cls
    conn = server.connect()
    try:
        direct = exchange(conn, "POST", "/score", json.dumps(rows).encode(), JSON).json()
        meta = exchange(conn, "GET", "/metadata").json()
    finally:
        conn.close()
    assert reply["predictions"] == direct["predictions"]
    assert reply["error"]["details"][0]["row"] == 1, "the second row, counted from 0"
    assert reply["error_rows_start_at"] == 0
    assert reply["column_order"] == meta["column_order"]
