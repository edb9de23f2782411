"""A saved model dir used with plain MLflow, no mlship installed, answers what mlship answers.

A throwaway venv gets only the model's own ``requirements.txt`` (what MLflow would install for
it); ``plain/pyfunc_predict.py`` loads the dir with ``mlflow.pyfunc`` there. For every row of
every example dataset, read as its CSV is read, the labels must equal ``mlship predict``'s and
the probabilities (or values) agree to 1e-6 (mlship may serve the ONNX twin) and exactly with
mlship's scikit-learn runtime (an XGBoost model too: its pickle names mlship's label
wrapper, which the dir ships). Values mlship coerces (a store id sent as ``7``, ``7.0`` or
``"7"``) are coerced the same way; a value mlship refuses is refused, naming row and column.
``mlflow models serve`` from that venv is checked the same way over HTTP.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlship.scoring.predictor import Predictor
from tests import venvs
from tests.conftest import ROOT, run_cli, train_args
from tests.services import HOST, free_port, http_ok, running

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLIENT = Path(__file__).with_name("plain") / "pyfunc_predict.py"
TOLERANCE = 1e-6
DATASETS = {  # config, CSV
    "oj": (ROOT / "configs" / "base.yaml", ROOT / "data" / "oj.csv"),
    "wine": (ROOT / "configs" / "examples" / "wine.yaml", ROOT / "data" / "wine.csv"),
    "diabetes": (ROOT / "configs" / "examples" / "diabetes.yaml", ROOT / "data" / "diabetes.csv"),
}


def _clean_env() -> dict[str, str]:
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "MLFLOW_TRACKING_URI"}
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, trained_oj: Path) -> dict[str, Path]:
    """Model dirs: OJ (the session's), wine, diabetes, and OJ with gaps in two columns."""
    models = {"oj": trained_oj / "model"}
    for name in ("wine", "diabetes"):
        work = tmp_path_factory.mktemp(f"plain-{name}")
        result = run_cli(*train_args(work, config=DATASETS[name][0]))
        assert result.exit_code == 0, result.output
        models[name] = work / "model"
    work = tmp_path_factory.mktemp("plain-gaps")
    gappy = pd.read_csv(DATASETS["oj"][1])
    gappy.loc[gappy.index % 7 == 0, "PriceCH"] = np.nan
    gappy.loc[gappy.index % 11 == 0, "StoreID"] = np.nan
    gappy.to_csv(work / "oj.csv", index=False)
    result = run_cli(*train_args(work, f"data.uri={work / 'oj.csv'}"))
    assert result.exit_code == 0, result.output
    models["gaps"] = work / "model"
    work = tmp_path_factory.mktemp("plain-xgboost")  # its pickle names mlship's label wrapper
    result = run_cli(*train_args(work, "model.name=xgboost", config=DATASETS["wine"][0]))
    assert result.exit_code == 0, result.output
    models["xgboost"] = work / "model"
    return models


def _csv(name: str, trained: dict[str, Path]) -> Path:
    if name == "gaps":
        return trained["gaps"].parent / "oj.csv"
    return DATASETS["wine" if name == "xgboost" else name][1]


@pytest.fixture(scope="module")
def plain_python(trained: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with only what the models' requirements.txt files list (xgboost's adds one)."""
    venv = tmp_path_factory.mktemp("plain-mlflow") / "venv"
    requirements = [arg for m in trained.values() for arg in ("-r", str(m / "requirements.txt"))]
    install = venvs.install_command(venvs.create(venv, _clean_env()))
    done = subprocess.run(
        [*install, *requirements],
        capture_output=True, text=True, env=_clean_env(), timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin" / "python"


def plain_predict(python: Path, model: Path, frame: pd.DataFrame, work: Path) -> dict[str, Any]:
    """The reply of ``mlflow.pyfunc`` in the plain venv for ``frame``."""
    table = work / "table.json"
    cells = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    table.write_text(json.dumps({"columns": list(frame.columns), "data": cells}))
    done = subprocess.run(
        [str(python), str(CLIENT), str(model), str(table)],
        capture_output=True, text=True, env=_clean_env(), timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    reply: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return reply


def mlship_predict(model: Path, csv: Path, work: Path) -> pd.DataFrame:
    out = work / "mlship.csv"
    result = run_cli("predict", "--model", str(model), "--input", str(csv), "--output", str(out))
    assert result.exit_code == 0, result.output
    return pd.read_csv(out, keep_default_na=False)


def assert_same(plain: dict[str, Any], ours: pd.DataFrame, *, exact: bool = False) -> None:
    theirs = pd.DataFrame(plain["data"], columns=plain["columns"])
    assert list(theirs.columns) == list(ours.columns)
    for column in theirs.columns:
        if not pd.api.types.is_numeric_dtype(theirs[column]):
            assert theirs[column].astype(str).tolist() == ours[column].astype(str).tolist()
            continue
        diff = np.abs(theirs[column].to_numpy(float) - ours[column].to_numpy(float))
        assert diff.max() <= (0 if exact else TOLERANCE), f"{column}: max |d| {diff.max():.3g}"


@pytest.mark.parametrize("name", ["oj", "wine", "diabetes", "gaps", "xgboost"])
def test_every_row_of_every_dataset_matches_mlship(
    name: str, trained: dict[str, Path], plain_python: Path, tmp_path: Path
) -> None:
    model, csv = trained[name], _csv(name, trained)
    raw = pd.read_csv(csv)
    plain = plain_predict(plain_python, model, raw, tmp_path)
    assert "error" not in plain, plain
    assert len(plain["data"]) == len(raw)
    assert_same(plain, mlship_predict(model, csv, tmp_path))
    sklearn = Predictor.load(model, runtime="sklearn").predict_frame(raw)
    assert_same(plain, pd.DataFrame(sklearn.columns()), exact=True)
    if Predictor.load(model).is_classifier:
        assert any(c.startswith("proba_") for c in plain["columns"])


@pytest.mark.parametrize("spelling", ["int", "float", "text"])
def test_store_ids_are_coerced_as_mlship_coerces_them(
    spelling: str, trained: dict[str, Path], plain_python: Path, tmp_path: Path
) -> None:
    raw = pd.read_csv(DATASETS["oj"][1])
    frame = raw.astype({"StoreID": {"int": "int64", "float": "float64", "text": "str"}[spelling]})
    plain = plain_predict(plain_python, trained["oj"], frame, tmp_path)
    ours = Predictor.load(trained["oj"], runtime="sklearn").predict_frame(frame)
    assert_same(plain, pd.DataFrame(ours.columns()), exact=True)


def test_a_value_mlship_refuses_is_refused_with_its_row_and_column(
    trained: dict[str, Path], plain_python: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(DATASETS["oj"][1]).astype({"PriceCH": object})
    frame.loc[5, "PriceCH"] = "cheap"
    frame.loc[9, "Store7"] = None
    plain = plain_predict(plain_python, trained["oj"], frame, tmp_path)
    assert "row 5, column 'PriceCH': expected a number, got 'cheap'" in plain["error"]
    assert "row 9, column 'Store7': missing value not allowed" in plain["error"]
    csv = tmp_path / "bad.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "out.csv"
    refused = run_cli("predict", "--model", str(trained["oj"]), "-i", str(csv), "-o", str(out))
    assert refused.exit_code != 0
    assert "PriceCH" in refused.output


@pytest.fixture(scope="module")
def mlflow_server(
    trained: dict[str, Path], plain_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """``mlflow models serve`` of the OJ dir from the plain venv (no conda, no new env)."""
    port, work = free_port(), tmp_path_factory.mktemp("mlflow-serve")
    mlflow = plain_python.with_name("mlflow")
    command = [str(mlflow), "models", "serve", "-m", str(trained["oj"]), "-h", HOST,
               "-p", str(port), "--env-manager", "local", "--workers", "1"]  # fmt: skip
    drop: dict[str, str | None] = {k: None for k in os.environ if k not in _clean_env()}
    drop["PATH"] = f"{mlflow.parent}{os.pathsep}{os.environ.get('PATH', '')}"  # its uvicorn
    with running(
        "mlflow models serve", command, log_path=work / "serve.log",
        ready=lambda: http_ok(f"http://{HOST}:{port}/ping"), timeout=180, cwd=work, env=drop,
    ):  # fmt: skip
        yield port


def _invocations(port: int, body: dict[str, Any]) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request("POST", "/invocations", json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize("shape", ["dataframe_records", "dataframe_split", "inputs"])
def test_mlflow_models_serve_answers_as_mlship(
    shape: str, trained: dict[str, Path], mlflow_server: int
) -> None:
    raw = pd.read_csv(DATASETS["oj"][1]).drop(columns=["Purchase", "STORE"])
    split = json.loads(raw.to_json(orient="split", index=False))
    body = {
        "dataframe_records": raw.to_dict(orient="records"),
        "dataframe_split": split,
        "inputs": {c: raw[c].tolist() for c in raw.columns},
    }[shape]
    status, reply = _invocations(mlflow_server, {shape: body})
    assert status == 200, reply
    theirs = pd.DataFrame(reply["predictions"])
    ours = pd.DataFrame(
        Predictor.load(trained["oj"], runtime="sklearn").predict_frame(raw).columns()
    )
    assert theirs["prediction"].tolist() == ours["prediction"].tolist()
    # 1e-12, not 0: MLflow's JSON encoder may drop the last bit of a float
    assert np.abs(theirs["proba_MM"].to_numpy() - ours["proba_MM"].to_numpy()).max() <= 1e-12
