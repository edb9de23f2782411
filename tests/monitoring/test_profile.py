"""The reference profile: written at training, in the model dir, covered by its manifest, on the run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlship.errors import ModelError
from mlship.model import layout
from mlship.model.profile import parse_profile, read_profile
from mlship.model.saved import SavedModel
from tests.conftest import ROOT

MODEL_V0 = ROOT / "tests" / "fixtures" / "model-v0"


def test_the_model_dir_holds_a_small_versioned_profile(trained_oj: Path) -> None:
    model = trained_oj / "model"
    path = model / layout.PROFILE
    raw = json.loads(path.read_text())
    assert raw["profile_version"] == 1
    assert path.stat().st_size < 16_000
    saved = SavedModel.open(model)
    profile = read_profile(model)
    assert profile is not None
    assert list(profile.features) == [c.name for c in saved.columns]
    assert (profile.rows, profile.holdout_rows) == (856, 214)
    price = profile.features["PriceCH"]
    assert price.kind == "numeric" and price.null_rate == 0.0
    assert price.quantiles["0.5"] == pytest.approx(1.86)
    assert len(price.bins.shares) == len(price.bins.edges) + 1  # type: ignore[union-attr]
    assert sum(price.bins.shares) == pytest.approx(1.0, abs=1e-4)
    stores = profile.features["StoreID"]
    assert stores.kind == "categorical"
    assert set(stores.bins.categories) == {"1", "2", "3", "4", "7"}  # type: ignore[union-attr]
    prediction = profile.prediction
    assert prediction.labels is not None and set(prediction.labels.categories) == {"CH", "MM"}
    assert prediction.probabilities is not None and set(prediction.probabilities) == {"CH", "MM"}


def test_the_manifest_covers_the_profile(trained_oj: Path, tmp_path: Path) -> None:
    listed = json.loads((trained_oj / "model" / layout.MANIFEST).read_text())["files"]
    assert layout.PROFILE in {entry["path"] for entry in listed}
    copy = tmp_path / "model"
    shutil.copytree(trained_oj / "model", copy)
    path = copy / layout.PROFILE
    raw = json.loads(path.read_text())
    raw["features"]["PriceCH"]["bins"]["shares"][0] += 0.5
    path.write_text(json.dumps(raw, indent=1) + "\n")
    with pytest.raises(ModelError, match=r"file extra_files/profile.json does not match"):
        SavedModel.open(copy)


def test_the_run_logs_the_profile(trained_oj: Path) -> None:
    from mlflow.tracking import MlflowClient

    info = SavedModel.open(trained_oj / "model").info
    client = MlflowClient(f"sqlite:///{trained_oj / 'mlruns.db'}")
    names = {item.path for item in client.list_artifacts(info.run_id)}
    assert "profile.json" in names
    local = Path(client.download_artifacts(info.run_id, "profile.json", str(trained_oj / "dl")))
    assert local.read_bytes() == (trained_oj / "model" / layout.PROFILE).read_bytes()


def test_a_dir_from_before_profiles_still_loads() -> None:
    assert read_profile(MODEL_V0) is None
    SavedModel.open(MODEL_V0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "expected a JSON object"),
        ({"profile_version": 9, "features": {}}, "profile_version 9 is not known"),
        ({"profile_version": 1, "features": []}, "features must be an object"),
        (
            {"profile_version": 1, "rows": 1, "holdout_rows": 1, "prediction": {},
             "features": {"x": {"type": "numeric", "null_rate": 0,
                                "bins": {"edges": [2, 1], "shares": [1, 0, 0]}}}},
            "increasing edges",
        ),
    ],
)  # fmt: skip
def test_a_malformed_profile_is_one_line(raw: object, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        parse_profile(raw, "model dir m: extra_files/profile.json")


def test_a_regression_profile_round_trips(tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import Ridge

    from mlship.config import Task
    from mlship.model.profile import write_profile
    from mlship.training.profiling import build_profile

    frame = pd.read_csv(ROOT / "data" / "diabetes.csv")
    x, y = frame.drop(columns=["progression"]), frame["progression"]
    x.loc[:9, "bmi"] = None  # a gap: counted in the null rate, not in the bins
    train, test = x.iloc[:350], x.iloc[350:]
    model = Ridge().fit(train.fillna(0), y.iloc[:350])
    (tmp_path / "extra_files").mkdir()
    write_profile(tmp_path / "extra_files", build_profile(model, train, test, [], Task.regression))
    again = read_profile(tmp_path)
    assert again is not None and again.features["bmi"].null_rate == pytest.approx(
        10 / 350, abs=1e-6
    )
    assert sum(again.features["bmi"].bins.shares) == pytest.approx(1.0, abs=1e-4)
    assert again.prediction.values is not None and again.prediction.labels is None
    assert len(again.prediction.values.shares) == 10
    assert again.to_json() == json.loads((tmp_path / layout.PROFILE).read_text())
