"""The integrity manifest: export writes it last, the registry records its digest, and every
reader verifies the dir against it before anything is parsed or unpickled.

The tampered-dir matrix copies the session's trained OJ model and changes one thing each time:
each change is refused in one line naming the file, by ``SavedModel.open``, ``Predictor.load``,
the server's ``/ready``, ``mlship predict`` and ``mlship image build`` alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from mlship.errors import ModelError
from mlship.model import layout
from mlship.model.manifest import read_manifest, verify, write_manifest
from mlship.model.saved import SavedModel
from mlship.registry.tracking import MANIFEST_TAG
from mlship.scoring.predictor import Predictor
from mlship.serving.app import create_app
from mlship.serving.settings import ServeSettings
from tests.conftest import OJ_CSV, ROOT, run_cli

LEGACY = ROOT / "tests" / "fixtures" / "model-v0"


def copy_model(trained_oj: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(trained_oj / "model", target, symlinks=True)
    return target


def one_line_refusal(model: Path, names: str) -> str:
    """Opening ``model`` fails with one line naming ``names``; returns the message."""
    with pytest.raises(ModelError) as error:
        SavedModel.open(model)
    message = str(error.value)
    assert "\n" not in message
    assert names in message
    with pytest.raises(ModelError, match=re.escape(names)):
        Predictor.load(model)
    return message


# -- a dir as training wrote it ---------------------------------------------------------------


def test_a_trained_dir_verifies_and_the_registry_holds_its_digest(trained_oj: Path) -> None:
    from mlflow import MlflowClient

    model = trained_oj / "model"
    manifest = verify(model)
    assert manifest is not None
    data = (model / layout.MANIFEST).read_bytes()
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    files = [entry.path for entry in manifest.files]
    on_disk = sorted(
        p.relative_to(model).as_posix()
        for p in model.rglob("*")
        if p.is_file() and p.name != layout.MANIFEST
    )
    assert files == on_disk
    assert {layout.MLMODEL, "model.pkl", layout.INFO, layout.ONNX, layout.PARITY} <= set(files)
    assert manifest.format_version == layout.FORMAT_VERSION
    info = json.loads((model / layout.INFO).read_text())
    assert (manifest.name, manifest.version, manifest.run_id) == (
        info["name"],
        info["version"],
        info["run_id"],
    )
    assert SavedModel.open(model).info.manifest_sha256 == manifest.sha256
    registry = MlflowClient(tracking_uri=f"sqlite:///{trained_oj / 'mlruns.db'}")
    assert registry.get_run(manifest.run_id).data.tags[MANIFEST_TAG] == manifest.sha256
    version = registry.get_model_version(manifest.name, manifest.version)
    assert version.tags[MANIFEST_TAG] == manifest.sha256


def test_the_manifest_is_written_last_sorted_and_deterministic(
    trained_oj: Path, tmp_path: Path
) -> None:
    model = copy_model(trained_oj, tmp_path)
    raw = json.loads((model / layout.MANIFEST).read_text())
    paths = [item["path"] for item in raw["files"]]
    assert paths == sorted(paths)
    assert layout.MANIFEST not in paths
    mtimes = {
        p.name: p.stat().st_mtime_ns for p in (trained_oj / "model").rglob("*") if p.is_file()
    }
    assert mtimes[layout.MANIFEST] == max(mtimes.values())
    again = write_manifest(model, name=raw["name"], version=raw["version"], run_id=raw["run_id"])
    assert again == read_manifest(trained_oj / "model").sha256  # same files, same bytes


def test_verification_is_fast(trained_oj: Path) -> None:
    model = trained_oj / "model"
    verify(model)  # warm the page cache
    start = time.perf_counter()
    for _ in range(20):
        verify(model)
    assert (time.perf_counter() - start) / 20 < 0.05


def test_pinning_the_digest(trained_oj: Path, tmp_path: Path) -> None:
    model = copy_model(trained_oj, tmp_path)
    digest = read_manifest(model).sha256
    assert SavedModel.open(model, manifest_sha256=digest).info.manifest_sha256 == digest
    with pytest.raises(ModelError, match="is not the pinned"):
        SavedModel.open(model, manifest_sha256="0" * 64)
    with pytest.raises(ModelError, match=r"no manifest\.json to check"):
        SavedModel.open(LEGACY, manifest_sha256=digest)


# -- the tampered-dir matrix ------------------------------------------------------------------


def swap_classes(model: Path) -> None:
    spec = yaml.safe_load((model / layout.MLMODEL).read_text())
    spec["metadata"]["classes"] = list(reversed(spec["metadata"]["classes"]))
    (model / layout.MLMODEL).write_text(yaml.safe_dump(spec))


def foreign_onnx(model: Path) -> None:
    """Another model's ONNX graph plus a hand-written parity report that says it passed."""
    foreign = (LEGACY / layout.ONNX).read_bytes()
    assert foreign != (model / layout.ONNX).read_bytes()
    (model / layout.ONNX).write_bytes(foreign)
    (model / layout.PARITY).write_text(json.dumps({"passed": True}))


def forge_parity(model: Path) -> None:
    report = json.loads((model / layout.PARITY).read_text())
    (model / layout.PARITY).write_text(json.dumps({**report, "max_abs_diff": 0.0}, indent=2))


def truncate_pickle(model: Path) -> None:
    data = (model / "model.pkl").read_bytes()
    (model / "model.pkl").write_bytes(data[: len(data) // 2])


def garbage_pickle(model: Path) -> None:
    """Same size, other bytes: only the digest can tell."""
    size = (model / "model.pkl").stat().st_size
    (model / "model.pkl").write_bytes(os.urandom(size))


def add_extra_file(model: Path) -> None:
    (model / "extra.py").write_text("import os\n")


def remove_file(model: Path) -> None:
    (model / "input_example.json").unlink()


def add_symlink(model: Path) -> None:
    (model / "extra_files" / "model.onnx").unlink()
    (model / "extra_files" / "model.onnx").symlink_to(LEGACY / layout.ONNX)


TAMPERED: list[tuple[Callable[[Path], None], str]] = [
    (swap_classes, "file MLmodel does not match the manifest (sha256 "),
    (foreign_onnx, "file extra_files/model.onnx does not match the manifest ("),
    (forge_parity, "file extra_files/onnx_parity.json does not match the manifest"),
    (truncate_pickle, "file model.pkl does not match the manifest (size "),
    (garbage_pickle, "file model.pkl does not match the manifest (sha256 "),
    (add_extra_file, "unexpected file extra.py (not in the manifest)"),
    (remove_file, "file input_example.json is listed in the manifest but missing"),
    (add_symlink, "extra_files/model.onnx is a symlink"),
]


@pytest.mark.parametrize(("tamper", "message"), TAMPERED, ids=[t.__name__ for t, _ in TAMPERED])
def test_a_tampered_dir_is_refused_in_one_line(
    trained_oj: Path, tmp_path: Path, tamper: Callable[[Path], None], message: str
) -> None:
    model = copy_model(trained_oj, tmp_path)
    tamper(model)
    text = one_line_refusal(model, message)
    assert text.startswith(f"model dir {model}: ")


def test_the_foreign_onnx_names_both_files(trained_oj: Path, tmp_path: Path) -> None:
    model = copy_model(trained_oj, tmp_path)
    foreign_onnx(model)
    text = one_line_refusal(model, "extra_files/model.onnx")
    assert text.endswith("(and 1 more)")  # the parity report too


class RunsCode:
    """A pickle that runs a shell command when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_pickle_is_refused_before_it_runs(trained_oj: Path, tmp_path: Path) -> None:
    model = copy_model(trained_oj, tmp_path)
    marker = tmp_path / "MARKER"
    (model / "model.pkl").write_bytes(pickle.dumps(RunsCode(marker)))
    one_line_refusal(model, "file model.pkl does not match the manifest")
    client = TestClient(create_app(ServeSettings(model_dir=model), background_load=False))
    with client:
        assert client.get("/ready").status_code == 503
    assert not marker.exists()
    # The control: the same bytes do run code when unpickled, so the refusal is what saved us.
    control = tmp_path / "CONTROL"
    pickle.loads(pickle.dumps(RunsCode(control)))
    assert control.exists()


def test_the_manifest_is_required_from_format_1(trained_oj: Path, tmp_path: Path) -> None:
    model = copy_model(trained_oj, tmp_path)
    (model / layout.MANIFEST).unlink()
    message = one_line_refusal(
        model, f"no manifest.json (format {layout.FORMAT_VERSION} dirs carry one)"
    )
    assert message.endswith("re-export the model from the registry")


def test_a_legacy_dir_needs_no_manifest_but_is_verified_when_it_has_one(tmp_path: Path) -> None:
    assert SavedModel.open(LEGACY).info.manifest_sha256 == ""
    model = tmp_path / "model"
    shutil.copytree(LEGACY, model)
    (model / "notes.txt").write_text("an unlisted file in a format-0 dir is not checked\n")
    assert SavedModel.open(model).info.format_version == 0


def test_a_resigned_dir_verifies_but_not_against_the_registry(
    trained_oj: Path, tmp_path: Path
) -> None:
    """The trust boundary: anyone who can write the dir can write a matching manifest."""
    model = copy_model(trained_oj, tmp_path)
    recorded = read_manifest(model)
    swap_classes(model)
    forged = write_manifest(
        model, name=recorded.name, version=recorded.version, run_id=recorded.run_id
    )
    assert SavedModel.open(model).info.manifest_sha256 == forged != recorded.sha256
    with pytest.raises(ModelError, match="is not the pinned"):
        SavedModel.open(model, manifest_sha256=recorded.sha256)


def rewrite_manifest(model: Path, change: Callable[[dict[str, Any]], None]) -> None:
    raw = json.loads((model / layout.MANIFEST).read_text())
    change(raw)
    (model / layout.MANIFEST).write_text(json.dumps(raw))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["files"][0].update(path="../outside"), "must be a relative path inside"),
        (lambda m: m["files"][0].update(path="/etc/passwd"), "must be a relative path inside"),
        (lambda m: m["files"][0].update(sha256="ABC"), "64 lowercase hex digits"),
        (lambda m: m["files"][0].update(size=True), "must be a byte count"),
        (lambda m: m["files"].append(m["files"][0]), "is listed twice"),
        (lambda m: m.update(files={}), "files must be a list"),
        (lambda m: m.update(format_version=7), "model format 7 is not known"),
        (
            lambda m: m.update(version="99"),
            f"describes format {layout.FORMAT_VERSION} oj-purchase v99",
        ),
    ],
)
def test_a_malformed_manifest_is_refused(
    trained_oj: Path, tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    model = copy_model(trained_oj, tmp_path)
    rewrite_manifest(model, change)
    with pytest.raises(ModelError, match=message) as error:
        SavedModel.open(model)
    assert "\n" not in str(error.value)


def test_a_manifest_that_is_not_json_is_refused(trained_oj: Path, tmp_path: Path) -> None:
    model = copy_model(trained_oj, tmp_path)
    (model / layout.MANIFEST).write_text("{not json")
    with pytest.raises(ModelError, match=r"manifest\.json is not valid JSON"):
        SavedModel.open(model)


# -- every reader refuses it the same way -----------------------------------------------------


def test_serve_answers_ready_503_naming_the_file(trained_oj: Path, tmp_path: Path) -> None:
    model = copy_model(trained_oj, tmp_path)
    garbage_pickle(model)
    with TestClient(create_app(ServeSettings(model_dir=model), background_load=False)) as client:
        assert client.get("/health").status_code == 200
        reply = client.get("/ready")
        assert reply.status_code == 503
        assert "file model.pkl does not match the manifest" in reply.json()["error"]
        assert client.post("/score", json=[{"a": 1}]).status_code == 503


def test_predict_exits_1_with_one_line(trained_oj: Path, tmp_path: Path) -> None:
    model = copy_model(trained_oj, tmp_path)
    swap_classes(model)
    out = tmp_path / "scores.csv"
    result = run_cli("predict", "-m", str(model), "-i", str(OJ_CSV), "-o", str(out))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: model dir ")
    assert "file MLmodel does not match the manifest" in lines[0]
    assert not out.exists()


def test_image_build_refuses_before_docker_runs(
    trained_oj: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlship.deploy import image

    model = copy_model(trained_oj, tmp_path)
    add_extra_file(model)
    calls: list[Any] = []
    monkeypatch.setattr(image.subprocess, "run", lambda *args, **_: calls.append(args))
    context = tmp_path / "context"
    context.mkdir()
    result = run_cli("image", "build", "--model", str(model), "--context", str(context))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    refusal = f"error: model dir {model.resolve()}: unexpected file extra.py (not in the manifest)"
    assert lines == [refusal]
    assert calls == []
    assert not list(context.rglob("model-*"))
