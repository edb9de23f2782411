"""The saved-model contract: format and mlship versions are stamped, unknown formats refused,
and a dir written by mlship 0.1.0 (before the format was versioned) still loads and scores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlship import __version__
from mlship.errors import ModelError
from mlship.model import layout
from mlship.model.manifest import write_manifest
from mlship.model.saved import SavedModel, check_runtime
from mlship.scoring.predictor import Predictor
from tests.conftest import OJ_CSV, ROOT

LEGACY = ROOT / "tests" / "fixtures" / "model-v0"
EXPECTED = json.loads((ROOT / "tests" / "fixtures" / "model-v0-expected.json").read_text())


def copy_legacy(tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(LEGACY, target)
    return target


def test_a_legacy_dir_is_format_0_and_scores_as_mlship_0_1_did() -> None:
    saved = SavedModel.open(LEGACY)
    assert saved.info.format_version == 0
    assert saved.info.mlship_version == ""
    assert saved.onnx_ready
    rows = pd.read_csv(OJ_CSV).head(20)
    for runtime in ("onnx", "sklearn"):
        result = Predictor.load(LEGACY, runtime=runtime).predict_frame(rows)
        assert result.predictions == EXPECTED[runtime]["predictions"]
        assert result.probabilities is not None
        gap = np.abs(result.probabilities - np.array(EXPECTED[runtime]["probabilities"])).max()
        assert gap <= 1e-12


@pytest.mark.parametrize("version", [4, 99, "1", None, -1])
def test_an_unknown_format_version_is_refused_in_one_line(tmp_path: Path, version: object) -> None:
    model = copy_legacy(tmp_path)
    info = json.loads((model / layout.INFO).read_text())
    (model / layout.INFO).write_text(json.dumps({**info, "format_version": version}))
    with pytest.raises(ModelError, match=r"model format .* is not known to this mlship") as error:
        SavedModel.open(model)
    assert "\n" not in str(error.value)
    with pytest.raises(ModelError, match="not known"):
        Predictor.load(model)


def test_the_current_format_is_accepted(tmp_path: Path) -> None:
    model = copy_legacy(tmp_path)
    info = json.loads((model / layout.INFO).read_text())
    stamped = {**info, "format_version": layout.FORMAT_VERSION, "mlship_version": __version__}
    (model / layout.INFO).write_text(json.dumps(stamped))
    with pytest.raises(ModelError, match="no manifest"):  # formats 1 and later carry one
        SavedModel.open(model)
    write_manifest(model, name=info["name"], version=info["version"], run_id=info["run_id"])
    saved = SavedModel.open(model)
    assert (saved.info.format_version, saved.info.mlship_version) == (3, __version__)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda m: (m / layout.MLMODEL).unlink(), "not a saved model dir"),
        (lambda m: (m / layout.MLMODEL).write_text(": : :\n\t["), "not valid YAML"),
        (lambda m: (m / layout.INFO).write_text("{not json"), "not valid JSON"),
        (lambda m: (m / layout.INFO).write_text("[1, 2]"), "expected a JSON object"),
        (lambda m: (m / layout.PARITY).write_text('"passed"'), "not a parity report"),
    ],
)
def test_a_broken_dir_is_one_named_error(tmp_path: Path, breakage: object, message: str) -> None:
    model = copy_legacy(tmp_path)
    breakage(model)  # type: ignore[operator]
    with pytest.raises(ModelError, match=message):
        SavedModel.open(model)


def test_runtime_names_are_checked_in_one_place(tmp_path: Path) -> None:
    assert check_runtime("onnx") == "onnx"
    with pytest.raises(ModelError, match="choose one of auto, onnx, sklearn"):
        check_runtime("tensorrt")
    model = copy_legacy(tmp_path)
    (model / layout.ONNX).unlink()
    saved = SavedModel.open(model)
    assert saved.serving_runtime("auto") == "sklearn"
    with pytest.raises(ModelError, match="cannot use ONNX"):
        saved.serving_runtime("onnx")


def test_training_stamps_format_and_mlship_version(trained_oj: Path) -> None:
    info = json.loads((trained_oj / "model" / layout.INFO).read_text())
    assert info["format_version"] == layout.FORMAT_VERSION
    assert info["mlship_version"] == __version__
    assert SavedModel.open(trained_oj / "model").info.format_version == layout.FORMAT_VERSION
