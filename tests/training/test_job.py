"""The training job: output checked before any work, rows counted, warnings logged, and a
registry version never left pointing at a model that was not exported.

The ``mlship train`` tests run the real CLI in-process on the embedded SQLite store.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from mlship.config import Settings, load_settings
from mlship.storage import owned_prefix
from mlship.training import job
from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV, run_cli, train_args


def settings(*overrides: str) -> Settings:
    return load_settings(BASE_CONFIG, None, [f"data.uri={OJ_CSV}", *overrides], ENV_DIR)


def registry(work: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{work / 'mlruns.db'}")


def test_rows_read_and_used_are_printed_and_logged() -> None:
    lines: list[str] = []
    data = job.prepare(settings("data.sample.fraction=0.5"), lines.append)
    train, test = len(data.parts.x_train), len(data.parts.x_test)
    assert data.rows_read == 1070 and len(data.raw) == train + test < 1070
    assert "read 1,070 rows x 18 columns" in lines
    assert lines[-1] == (
        f"using {train + test:,} of 1,070 rows read: {train:,} to train, {test:,} to hold out"
    )
    _, tags, params = job.run_record(settings(), data, None, None)
    assert params["data.rows_read"] == 1070 and params["data.rows_used"] == train + test
    assert "data.warnings" not in tags


def test_warnings_are_printed_and_become_a_run_tag(tmp_path: Path) -> None:
    frame = pd.read_csv(OJ_CSV).assign(Const=1.0)
    frame.loc[frame.index[:800], "LoyalCH"] = np.nan
    frame.to_csv(tmp_path / "doubtful.csv", index=False)
    lines: list[str] = []
    data = job.prepare(settings(f"data.uri={tmp_path / 'doubtful.csv'}"), lines.append)
    expected = [
        "feature 'LoyalCH': 74.7% of values are missing (800 of 1,070 rows)",
        "feature 'Const' is constant (1.0 in every row); it cannot help the model",
    ]
    assert [line for line in lines if line.startswith("warning: ")] == [
        f"warning: {w}" for w in expected
    ]
    _, tags, _ = job.run_record(settings(), data, None, None)
    assert tags["data.warnings"] == "\n".join(expected)


@pytest.mark.skipif(not Path("/proc/1").is_dir(), reason="needs Linux /proc")
def test_unwritable_model_dir_fails_in_one_line_before_reading(workdir: Path) -> None:
    # Before: 16 s of fitting, logging and registering, then a FileNotFoundError traceback and
    # a registered version with no model dir.
    result = run_cli(*train_args(workdir, "output.model_dir=/proc/1/x"))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: cannot write /proc/1/x: cannot create anything in /proc/1 (No such file or "
        "directory)"
    ]
    assert not (workdir / "mlruns.db").exists()  # no run, no version


def test_cut_off_csv_fails_cleanly(workdir: Path, cut_csv: tuple[Path, int, int]) -> None:
    # Before: exit 0, trained on 533 of 1,070 rows, 7+ columns became nullable.
    path, line, fields = cut_csv
    result = run_cli(*train_args(workdir, f"data.uri={path}"))
    assert result.exit_code == 1, result.output
    assert f"data.uri '{path}': line {line} has {fields} of 18 fields" in result.stderr
    assert "Traceback" not in result.output
    assert not (workdir / "model").exists() and not (workdir / "mlruns.db").exists()


def test_entirely_null_feature_fails_cleanly(workdir: Path) -> None:
    pd.read_csv(OJ_CSV).assign(Coupon=np.nan).to_csv(workdir / "null.csv", index=False)
    result = run_cli(*train_args(workdir, f"data.uri={workdir / 'null.csv'}"))
    assert result.exit_code == 1
    assert "error: feature 'Coupon': every value is missing (1,070 rows)" in result.stderr
    assert not (workdir / "mlruns.db").exists()


@pytest.mark.slow
def test_failed_export_withdraws_the_version(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The output passes the check at the start, then becomes unwritable (its parent turns into
    # a file) while the model is logged and registered. Before: version 1 stayed registered.
    parent = workdir / "out"
    parent.mkdir()
    real_track = job.track

    def track_then_break_output(*args: object, **kwargs: object) -> object:
        registered = real_track(*args, **kwargs)  # type: ignore[arg-type]
        shutil.rmtree(parent)
        parent.write_text("")
        return registered

    monkeypatch.setattr(job, "track", track_then_break_output)
    result = run_cli(*train_args(workdir, f"output.model_dir={parent / 'model'}"))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    error = " ".join(result.stderr.split())
    assert f"error: exporting to {parent / 'model'} failed: cannot create" in error
    assert "version 1 of 'oj-purchase' was withdrawn from the registry" in error
    mlflow = registry(workdir)
    assert mlflow.search_model_versions("name='oj-purchase'") == []
    (run,) = mlflow.search_runs([mlflow.get_experiment_by_name("oj-purchase").experiment_id])
    assert run.data.tags["mlship.exported"] == "false"
    assert "is a file" in run.data.tags["mlship.export_error"]
    assert mlflow.get_registered_model("oj-purchase").aliases == {}


@pytest.mark.slow
def test_next_run_clears_what_a_killed_one_left(
    workdir: Path, dead_pid: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = owned_prefix("x").split("-")[1]
    temp = workdir / "tmp"
    killed_work = temp / f"mlship-{host}-{dead_pid}-abcdefgh"
    (killed_work / "onnx").mkdir(parents=True)
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    half_written = workdir / f".model.tmp-{host}-{dead_pid}-0123abcd"
    half_written.mkdir()
    moved_aside = workdir / f".model.old-{host}-{dead_pid}-0123abcd"  # and no model dir
    moved_aside.mkdir()
    (moved_aside / "MLmodel").write_text("artifact_path: model\n")
    result = run_cli(*train_args(workdir))
    assert result.exit_code == 0, result.output
    # The progress lines (wrapped to the console's width here; exact text: test_leftovers).
    assert result.stderr.count("restored") == 1 and result.stderr.count("removed stale") == 2
    assert "1,070 read, 1,070 used: 856 train / 214 holdout" in result.stdout
    assert [p.name for p in workdir.iterdir() if p.name.startswith(".model")] == []
    assert list(temp.iterdir()) == []  # this run's own work dir is gone too
    assert (workdir / "model" / "mlship.json").is_file()
