"""model.engine: dask trains LightGBM on a real Dask LocalCluster and saves the same kind of
model dir, which the predictor and the batch engine score like any other."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from mlship.config import load_settings
from mlship.errors import ConfigError, ModelError
from mlship.scoring.predictor import Predictor
from tests.conftest import BASE_CONFIG, ENV_DIR, OJ_CSV, run_cli, train_args


def test_dask_engine_is_for_lightgbm_only() -> None:
    with pytest.raises(ConfigError, match=r"model\.engine dask trains lightgbm only"):
        load_settings(BASE_CONFIG, None, ["model.engine=dask"], ENV_DIR)
    settings = load_settings(
        BASE_CONFIG,
        None,
        ["model.name=lightgbm", "model.engine=dask", "model.dask.workers=3"],
        ENV_DIR,
    )
    assert (settings.model.engine, settings.model.dask.workers) == ("dask", 3)


def test_missing_dask_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlship.config import DaskConfig
    from mlship.training.distributed import fit_on_dask

    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ModelError, match=r"pip install 'dask\[distributed\]'"):
        fit_on_dask(None, None, None, DaskConfig())


@pytest.mark.slow
def test_train_on_dask_then_score(workdir: Path) -> None:
    pytest.importorskip("distributed")
    result = run_cli(
        *train_args(workdir, "model.name=lightgbm", "model.engine=dask", "model.dask.workers=2")
    )
    assert result.exit_code == 0, result.output
    predictor = Predictor.load(workdir / "model")
    assert predictor.info.algorithm == "lightgbm"
    import pickle

    with (workdir / "model" / "model.pkl").open("rb") as handle:
        pipeline = pickle.load(handle)
    assert type(pipeline.named_steps["model"]).__name__ == "LGBMClassifier"  # plain, not Dask
    assert [str(c) for c in pipeline.named_steps["model"].classes_] == ["CH", "MM"]
    truth = pd.read_csv(OJ_CSV)
    scored = predictor.predict_frame(truth)
    assert (pd.Series(scored.predictions) == truth["Purchase"]).mean() > 0.8
