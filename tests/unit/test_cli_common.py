"""``mlship.cli.common.tracking_for``: flags win, the config fills in only what is missing."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mlship.cli import common

CONFIG, ENV_DIR = Path("base.yaml"), Path("env")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Each load_settings call's arguments; the settings name tracking ``cfg-uri``/``cfg-exp``."""
    calls: list[tuple[Any, ...]] = []

    def load(config: Path, env: str | None, overrides: list[str] | None, env_dir: Path) -> Any:
        calls.append((config, env, overrides, env_dir))
        return SimpleNamespace(tracking=SimpleNamespace(uri="cfg-uri", experiment="cfg-exp"))

    monkeypatch.setattr(common, "load_settings", load)
    return calls


def test_both_flags_given_read_no_config(reads: list[tuple[Any, ...]]) -> None:
    tracking, settings = common.tracking_for("flag-uri", "flag-exp", CONFIG, None, ENV_DIR)
    assert tracking == ("flag-uri", "flag-exp")
    assert settings is None
    assert reads == []


@pytest.mark.parametrize(
    ("uri", "experiment", "want"),
    [
        (None, None, ("cfg-uri", "cfg-exp")),
        ("flag-uri", None, ("flag-uri", "cfg-exp")),
        (None, "flag-exp", ("cfg-uri", "flag-exp")),
    ],
)
def test_a_missing_flag_comes_from_the_config(
    reads: list[tuple[Any, ...]], uri: str | None, experiment: str | None, want: tuple[str, str]
) -> None:
    tracking, settings = common.tracking_for(uri, experiment, CONFIG, "dev", ENV_DIR, ["a=1"])
    assert tracking == want
    assert settings is not None
    assert reads == [(CONFIG, "dev", ["a=1"], ENV_DIR)]


def test_read_config_reads_it_even_with_both_flags(reads: list[tuple[Any, ...]]) -> None:
    tracking, settings = common.tracking_for(
        "flag-uri", "flag-exp", CONFIG, None, ENV_DIR, read_config=True
    )
    assert tracking == ("flag-uri", "flag-exp")
    assert settings is not None
    assert reads == [(CONFIG, None, None, ENV_DIR)]
