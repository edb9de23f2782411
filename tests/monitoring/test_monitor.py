"""``mlship monitor`` on real OJ batches against a real trained model and MLflow store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlship.config import MonitorConfig
from mlship.errors import DataError
from mlship.model.profile import NumericBins
from mlship.monitoring.drift import chi_square_p, psi
from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV, ROOT, CliResult, run_cli

SHIFTED = {"PriceCH", "PriceMM", "LoyalCH"}
DERIVED = {"SalePriceCH", "SalePriceMM", "PriceDiff", "ListPriceDiff"}
UNTOUCHED = {"WeekofPurchase", "StoreID", "Store7", "SpecialCH", "SpecialMM", "DiscCH",
             "DiscMM", "PctDiscCH", "PctDiscMM"}  # fmt: skip


def resample(seed: int, rows: int = 600) -> pd.DataFrame:
    return pd.read_csv(OJ_CSV).sample(n=rows, replace=True, random_state=seed)


def shifted(seed: int = 8) -> pd.DataFrame:
    """Prices up 30% (and the prices derived from them), loyalty to Citrus Hill halved."""
    frame = resample(seed)
    for brand in ("CH", "MM"):
        frame[f"Price{brand}"] = (frame[f"Price{brand}"] * 1.3).round(2)
        frame[f"SalePrice{brand}"] = (frame[f"Price{brand}"] - frame[f"Disc{brand}"]).round(2)
    frame["PriceDiff"] = (frame["SalePriceMM"] - frame["SalePriceCH"]).round(2)
    frame["ListPriceDiff"] = (frame["PriceMM"] - frame["PriceCH"]).round(2)
    frame["LoyalCH"] = frame["LoyalCH"] * 0.5
    return frame


def monitor(trained: Path, data: Path, out: Path, *extra: str) -> tuple[CliResult, dict[str, Any]]:
    result = run_cli(
        "monitor", "--model", str(trained / "model"), "--data", str(data), "--output", str(out),
        "--config", str(BASE_CONFIG), "--env-dir", str(ENV_DIR),
        "--tracking-uri", f"sqlite:///{trained / 'mlruns.db'}", *extra,
    )  # fmt: skip
    summary = out / "summary.json"
    return result, json.loads(summary.read_text()) if summary.exists() else {}


def test_a_shifted_batch_flags_the_shifted_features_and_fails(
    trained_oj: Path, tmp_path: Path
) -> None:
    data = tmp_path / "shifted.csv"
    shifted().to_csv(data, index=False)
    result, summary = monitor(trained_oj, data, tmp_path / "out", "--target", "Purchase",
                              "--fail-on-drift", "monitor.drift_share=0.3")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("error: drift: 7 of 16 features")
    flagged = set(summary["drifted_features"])
    assert flagged >= SHIFTED and flagged <= SHIFTED | DERIVED
    assert not flagged & UNTOUCHED
    assert summary["dataset_drift"] is True
    assert all(p["drifted"] for p in summary["prediction"])
    performance = summary["performance"]
    assert performance["change"]["accuracy"] < -0.1
    assert "<td>PriceCH</td>" in (tmp_path / "out" / "report.html").read_text()
    _check_run(trained_oj, summary)


def _check_run(trained: Path, summary: dict[str, Any]) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{trained / 'mlruns.db'}")
    run = client.get_run(summary["monitor_run_id"])
    assert run.data.tags["mlship.kind"] == "monitoring"
    assert run.data.tags["mlship.model_version"] == summary["model"]["version"]
    assert run.data.metrics["drift_share"] == pytest.approx(summary["drift_share"])
    names = {a.path for a in client.list_artifacts(run.info.run_id, "monitor")}
    assert names == {"monitor/summary.json", "monitor/report.html"}


def test_a_resample_flags_nothing(trained_oj: Path, tmp_path: Path) -> None:
    data = tmp_path / "resample.csv"
    resample(7).to_csv(data, index=False)
    result, summary = monitor(trained_oj, data, tmp_path / "out", "--fail-on-drift")
    assert result.exit_code == 0, result.output
    assert summary["drifted_features"] == [] and summary["dataset_drift"] is False
    assert not any(p["drifted"] for p in summary["prediction"])


def test_logged_requests_in_a_parquet_folder(trained_oj: Path, tmp_path: Path) -> None:
    """The service's request log: features plus columns of its own, in several files."""
    logged = tmp_path / "requests"
    logged.mkdir()
    frame = shifted(9).drop(columns=["Purchase", "STORE"])
    frame["timestamp"] = pd.Timestamp("2026-12-01", tz="UTC")
    frame["request_id"] = [f"r{i}" for i in range(len(frame))]
    frame["prediction"], frame["proba_CH"], frame["proba_MM"] = "CH", 0.6, 0.4
    for i in range(3):
        frame.iloc[i * 200 : (i + 1) * 200].to_parquet(logged / f"part-{i}.parquet")
    result, summary = monitor(trained_oj, logged, tmp_path / "out", "--fail-on-drift")
    assert result.exit_code == 0, result.output  # 7 of 16 is under the default share 0.5
    assert summary["data"]["rows"] == 600
    assert set(summary["drifted_features"]) >= SHIFTED
    assert {f["name"] for f in summary["features"]} == UNTOUCHED | SHIFTED | DERIVED


def test_a_model_without_a_profile_is_one_line(tmp_path: Path) -> None:
    result = run_cli("monitor", "--model", str(ROOT / "tests/fixtures/model-v0"), "--data",
                     str(OJ_CSV), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}",
                     "--experiment", "x", "--config", str(tmp_path / "none.yaml"))  # fmt: skip
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no reference profile" in lines[0], result.output


def test_psi_and_the_test_agree_on_identity_and_move() -> None:
    bins = NumericBins((1.0, 2.0), (0.25, 0.5, 0.25))
    same = bins.shares_of(np.array([0.5, 1.5, 1.5, 2.5]))
    assert psi(bins.shares, same) == pytest.approx(0.0)
    assert chi_square_p(bins.shares, same, 4) == pytest.approx(1.0)
    moved = bins.shares_of(np.full(400, 2.5))
    assert psi(bins.shares, moved) > 1.0 and chi_square_p(bins.shares, moved, 400) < 1e-6
    assert MonitorConfig().drift_share == 0.5 and MonitorConfig().psi_threshold == 0.2


def test_a_feature_the_request_log_renamed_is_found() -> None:
    """The log writes a feature named like one of its own columns as ``feature_<name>``."""
    from mlship.model.profile import FeatureProfile, PredictionProfile, Profile
    from mlship.monitoring.job import with_features

    bins = NumericBins((1.0,), (0.5, 0.5))
    features = {n: FeatureProfile(n, "numeric", 0.0, bins, {}) for n in ("timestamp", "x")}
    profile = Profile(2, 2, features, PredictionProfile())
    logged = pd.DataFrame({"timestamp": ["2026-12-01"], "feature_timestamp": [3.0], "x": [1.0]})
    frame = with_features(logged, profile)
    assert frame["timestamp"].tolist() == [3.0] and list(frame.columns) == ["timestamp", "x"]
    with pytest.raises(DataError, match=r"no column 'x'"):
        with_features(logged.drop(columns=["x"]), profile)
