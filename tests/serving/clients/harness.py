"""What the real-client tests share, whether the server is a loopback ``mlship serve``
(``tests/serving/test_real_clients.py``) or a container of the built image
(``tests/e2e/test_image_clients.py``).

- The clients are not the project's dependencies (kserve would downgrade pandas, tritonclient
  ml-dtypes, sagemaker-core pulls boto3 and SciPy): they are installed, pinned, into one
  throwaway venv per test process, and the scripts beside this module run with that venv's
  python and print JSON.
- The reference is ``mlship predict`` (the CLI) on the very rows the clients send: every OJ
  row, 1,070. A client's labels must be identical and each class probability within 1e-9.
- ``check_*`` hold each client's report to that, the same way against either server.

SageMaker SDK v3: ``sagemaker==3.27.0`` is a meta-package without modules; its serializers
and deserializers are ``sagemaker.core.serializers`` / ``.deserializers`` of the
``sagemaker-core`` it requires (``>=2.27.0,<3``). Only that is installed (``sagemaker`` itself
adds MLflow, pyarrow, matplotlib and ~90 other packages, minutes of install, none used here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests import venvs
from tests.conftest import OJ_CSV, run_cli

CLIENTS = ("tritonclient[http]==2.73.0", "kserve==0.21.0", "sagemaker-core==2.27.0")
SCRIPTS = Path(__file__).parent
MODEL, VERSION = "oj-purchase", "1"
TOLERANCE = 1e-9
INSTALL_TIMEOUT_S = 900
CLIENT_TIMEOUT_S = 300
WRONG = "no-such-model"
# The SDK's own telemetry opt-out (sagemaker.core.telemetry reads it from the SDK defaults
# config; there is no environment variable for it).
SAGEMAKER_CONFIG = (
    "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"
)

_VENV: dict[tuple[str, ...], Path] = {}  # one venv per test process, whichever module asks


def say(config: pytest.Config, line: str) -> None:
    """A line on the terminal even with output captured (the timings)."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:  # pragma: no cover - plugins disabled
        print(line, file=sys.stderr)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


def client_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The runner's environment without what would mix the project's packages in."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, **(extra or {})}


def sagemaker_env(work: Path) -> dict[str, str]:
    """The SageMaker script's environment: telemetry opted out through the SDK's config file
    (both the admin and the user file point at it, so no machine-wide file is read), no AWS
    profile, credentials or instance metadata."""
    config = work / "sagemaker-config.yaml"
    config.write_text(SAGEMAKER_CONFIG)
    env = {k: v for k, v in client_env().items() if not k.startswith("AWS_")}
    return {
        **env,
        "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": str(config),
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
        "AWS_CONFIG_FILE": str(work / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def clients_python(tmp_path_factory: pytest.TempPathFactory, config: pytest.Config) -> Path:
    """The python of a fresh venv holding only the pinned client libraries (made once)."""
    if CLIENTS in _VENV:
        return _VENV[CLIENTS]
    venv = tmp_path_factory.mktemp("clients") / "venv"
    start = time.monotonic()
    python = venvs.create(venv, client_env())
    install = subprocess.run(
        [*venvs.install_command(python), *CLIENTS],
        capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env=client_env(),
    )  # fmt: skip
    assert install.returncode == 0, f"pip install {' '.join(CLIENTS)}:\n{install.stderr[-4000:]}"
    say(config, f"[real clients] venv with {', '.join(CLIENTS)}: {time.monotonic() - start:.1f}s")
    _VENV[CLIENTS] = python
    return python


def run_client(
    python: Path, script: str, *args: str, config: pytest.Config, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``SCRIPT`` (beside this module) with the clients venv's python; its JSON report."""
    start = time.monotonic()
    done = subprocess.run(
        [str(python), str(SCRIPTS / script), *args],
        capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, env=env or client_env(),
    )  # fmt: skip
    assert done.returncode == 0, f"{script} failed:\n{done.stderr[-4000:]}"
    say(config, f"[real clients] {script} {args[0]}: {time.monotonic() - start:.1f}s")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


# ---------------------------------------------------------------------------------------------
# the rows and the reference


def write_rows(work: Path) -> tuple[Path, Path]:
    """Every OJ row (1,070) without the target: as JSON records (what the clients send) and as
    the CSV ``mlship predict`` reads. Returns (rows.json, rows.csv)."""
    frame = pd.read_csv(OJ_CSV).drop(columns=["Purchase", "STORE"])
    rows_json, rows_csv = work / "rows.json", work / "rows.csv"
    rows_json.write_text(json.dumps(frame.to_dict(orient="records")))
    frame.to_csv(rows_csv, index=False)
    return rows_json, rows_csv


def predict_reference(model_dir: Path, rows_csv: Path, work: Path) -> dict[str, Any]:
    """``mlship predict`` on the rows, as ``{"predictions", "probabilities": [{class: p}],
    "classes"}`` (Parquet output: the floats exactly as scored)."""
    out = work / "reference.parquet"
    result = run_cli("predict", "--model", str(model_dir), "--input", str(rows_csv),
                     "--output", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(out)
    classes = [c.removeprefix("proba_") for c in scored.columns if c.startswith("proba_")]
    probabilities = [{c: float(row[f"proba_{c}"]) for c in classes} for _, row in scored.iterrows()]
    labels = [str(v) for v in scored["prediction"]]
    assert len(labels) == len(pd.read_csv(rows_csv))
    return {"predictions": labels, "probabilities": probabilities, "classes": classes}


# ---------------------------------------------------------------------------------------------
# assertions


def assert_scores_equal(
    labels: list[Any], probabilities: list[list[float]], classes: list[str], want: dict[str, Any]
) -> None:
    """Labels identical to the reference's, each class's probability within ``TOLERANCE``."""
    assert [str(label) for label in labels] == want["predictions"]
    assert len(probabilities) == len(want["probabilities"])
    assert all(len(got) == len(classes) for got in probabilities)
    worst = max(
        abs(float(got[j]) - row[c])
        for got, row in zip(probabilities, want["probabilities"], strict=True)
        for j, c in enumerate(classes)
    )
    assert worst <= TOLERANCE, f"largest probability difference {worst}"


def assert_oip_infer(
    result: dict[str, Any], want: dict[str, Any], request_id: str | None = None
) -> None:
    assert result["id"] == request_id
    assert result["model_name"] == MODEL
    classes = result["probabilities.parameters"]["classes"]
    assert classes == want["classes"]
    assert_scores_equal(result["label"], result["probabilities"], classes, want)


def check_triton_metadata(triton: dict[str, Any], signature: list[dict[str, Any]]) -> None:
    assert triton["is_server_live"] is True
    assert triton["is_server_ready"] is True
    assert triton["is_model_ready"] is True
    assert triton["is_model_ready_versioned"] is True
    assert triton["server_metadata"]["name"] == "mlship"
    meta = triton["model_metadata"]
    assert meta["name"] == MODEL and meta["versions"] == [VERSION]
    assert [i["name"] for i in meta["inputs"]] == [c["name"] for c in signature]
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64", "BYTES"}
    assert all(i["shape"] == [-1] for i in meta["inputs"])
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]


def check_triton_per_column(triton: dict[str, Any], reference: dict[str, Any]) -> None:
    result = triton["infer"]
    assert result["model_version"] == VERSION
    assert result["outputs"] == ["label", "probabilities"]
    assert_oip_infer(result, reference, "triton-1")
    label_only = triton["infer_versioned_label_only"]
    assert label_only["outputs"] == ["label"] and label_only["id"] == "triton-2"
    assert label_only["label"] == reference["predictions"]


def check_triton_defaults(triton: dict[str, Any], reference: dict[str, Any]) -> None:
    """The client's defaults: binary outputs asked for (JSON comes back and is read); binary
    inputs refused with a 400 that names the fix."""
    assert_oip_infer(triton["infer_no_outputs"], reference)
    refused = triton["infer_binary_inputs"]
    assert refused["status"] == "400"
    assert "binary_data=False" in refused["message"]


def check_triton_wrong_model(triton: dict[str, Any]) -> None:
    assert triton["is_model_ready_wrong_name"] is False
    assert triton["is_model_ready_wrong_version"] is False
    for call in ("metadata_wrong_name", "infer_wrong_name"):
        assert triton[call]["status"] == "404", triton[call]
        assert WRONG in triton[call]["message"]
    for call in ("metadata_wrong_version", "infer_wrong_version"):
        assert triton[call]["status"] == "404", triton[call]
        assert "version 999" in triton[call]["message"]


def check_kserve_v1(kserve: dict[str, Any], reference: dict[str, Any]) -> None:
    v1 = kserve["v1"]
    assert v1["is_server_live"] is True
    assert v1["is_model_ready"] is True
    reply = v1["infer"]
    classes = reference["classes"]
    assert [list(p) for p in reply["probabilities"]] == [classes] * len(reply["probabilities"])
    matrix = [[p[c] for c in classes] for p in reply["probabilities"]]
    assert_scores_equal(reply["predictions"], matrix, classes, reference)
    for call in ("is_model_ready_wrong_name", "infer_wrong_name"):
        assert v1[call]["status"] == 404, v1[call]
        assert WRONG in v1[call]["message"]


def check_kserve_v2(kserve: dict[str, Any], reference: dict[str, Any]) -> None:
    v2 = kserve["v2"]
    assert v2["is_server_live"] is True
    assert v2["is_server_ready"] is True
    assert v2["is_model_ready"] is True
    assert v2["is_model_ready_wrong_name"] is False  # the client maps a 4xx to False
    result = v2["infer"]
    rows = len(reference["predictions"])
    assert result["label.shape"] == [rows]
    assert result["probabilities.shape"] == [rows, len(reference["classes"])]
    assert_oip_infer(result, reference, "kserve-1")
    wrong = v2["infer_wrong_name"]
    assert wrong["status"] == 404 and WRONG in wrong["message"]


SAGEMAKER_REPLY_TYPES = {
    "csv": "text/csv",
    "json": "application/json",
    "jsonlines": "application/jsonlines",
}


def sagemaker_scores(got: Any, kind: str, classes: list[str]) -> tuple[list[Any], list[list[Any]]]:
    """Labels and probabilities (class order) out of what the SDK's ``kind`` deserializer
    returned."""
    if kind == "csv":  # CSVDeserializer: rows of text, the label then each class probability
        assert all(len(row) == 1 + len(classes) for row in got)
        return [row[0] for row in got], [[float(p) for p in row[1:]] for row in got]
    if kind == "json":  # JSONDeserializer: the /score reply
        return got["predictions"], [[p[c] for c in classes] for p in got["probabilities"]]
    # JSONLinesDeserializer: one {"prediction", "probabilities"} object a line
    return [r["prediction"] for r in got], [[r["probabilities"][c] for c in classes] for r in got]


def check_sagemaker(sagemaker: dict[str, Any], reference: dict[str, Any]) -> None:
    """Every serializer (headerless CSV from rows and from a DataFrame, JSON, JSON Lines) with
    every deserializer, each reply in the type its Accept asked for, equal to the reference."""
    assert sagemaker["ping"] == 200
    assert sagemaker["network"] == [], "the SDK tried to reach the network"
    assert sagemaker["telemetry_opt_out"] is True
    calls = sagemaker["calls"]
    assert len(calls) == 12
    for name, call in calls.items():
        assert call["status"] == 200, (name, call.get("error"))
        kind = name.split("->")[1]
        assert call["sent"]["accept"] == SAGEMAKER_REPLY_TYPES[kind]
        assert call["content_type"].split(";")[0] == SAGEMAKER_REPLY_TYPES[kind], name
        labels, probabilities = sagemaker_scores(call["deserialized"], kind, reference["classes"])
        assert_scores_equal(labels, probabilities, reference["classes"], reference)
    for name in ("csv_rows->csv", "csv_frame->csv"):
        sent = calls[name]["sent"]
        assert sent["content_type"] == "text/csv"
        assert "PriceCH" not in sent["body_start"].splitlines()[0], "the SDK's CSV has no header"
    bad = sagemaker["bad_value"]
    assert bad["status"] == 422, bad
    detail = json.loads(bad["error"])["details"][0]
    assert (detail["row"], detail["column"]) == (1, "PriceCH")
