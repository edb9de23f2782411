"""Fixtures shared by the serving tests: the OJ frame and an in-process client on ``trained_oj``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlship.serving.app import create_app
from mlship.serving.settings import ServeSettings
from tests.conftest import OJ_CSV


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.read_csv(OJ_CSV).drop(columns=["Purchase", "STORE"])


@pytest.fixture(scope="module")
def client(trained_oj: Path) -> Iterator[TestClient]:
    settings = ServeSettings(model_dir=trained_oj / "model", max_rows=5000)
    with TestClient(create_app(settings, background_load=False)) as c:
        yield c
