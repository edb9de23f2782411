"""Config layering, overrides and the errors a person sees for a bad config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlship.config import deep_merge, flatten, load_settings, parse_override, resolve_raw
from mlship.errors import ConfigError
from tests.conftest import BASE_CONFIG, ENV_DIR, run_cli


def test_deep_merge_keeps_nested_keys_and_replaces_lists() -> None:
    base = {"split": {"seed": 1, "cv_folds": 0}, "features": {"drop": ["a", "b"]}}
    merged = deep_merge(base, {"split": {"cv_folds": 5}, "features": {"drop": ["c"]}})
    assert merged == {"split": {"seed": 1, "cv_folds": 5}, "features": {"drop": ["c"]}}
    assert base["split"]["cv_folds"] == 0  # inputs untouched


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model.params.C=0.5", {"model": {"params": {"C": 0.5}}}),
        ("split.stratify=false", {"split": {"stratify": False}}),
        ("data.features.drop=[a, b]", {"data": {"features": {"drop": ["a", "b"]}}}),
        ("tracking.run_name=my run", {"tracking": {"run_name": "my run"}}),
        ("tracking.uri=", {"tracking": {"uri": None}}),
    ],
)
def test_parse_override_reads_yaml_values(text: str, expected: dict[str, object]) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["noequals", "=1", "a..b=1", "model.params.C=[unclosed"])
def test_parse_override_rejects_malformed(text: str) -> None:
    with pytest.raises(ConfigError, match="override"):
        parse_override(text)


def test_env_overlay_merges_softly() -> None:
    settings = load_settings(BASE_CONFIG, "test", [], ENV_DIR)
    assert settings.split.cv_folds == 5  # from the overlay
    assert settings.split.seed == 42  # survives from base
    assert settings.tracking.tags == {"stage": "test"}
    assert settings.model.chosen_params() == {"C": 1.0, "max_iter": 1000}
    assert "lightgbm" in settings.model.params


def test_overrides_win_over_env_overlay() -> None:
    settings = load_settings(
        BASE_CONFIG, "test", ["split.cv_folds=3", "model.params.logistic_regression.C=2"], ENV_DIR
    )
    assert settings.split.cv_folds == 3
    assert settings.model.chosen_params() == {"C": 2, "max_iter": 1000}


def test_unknown_env_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"env 'staging'.*dev, prod, test"):
        resolve_raw(BASE_CONFIG, "staging", [], ENV_DIR)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("split.tets_size=0.3", "config key split.tets_size: unknown key"),
        ("split.test_size=abc", "config key split.test_size:"),
        ("split.test_size=1.5", "config key split.test_size:"),
        ("split.cv_folds=1", "cv_folds must be 0"),
        ("task=clustering", "config key task:"),
        ("data.target=null", "config key data.target:"),
    ],
)
def test_bad_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings(BASE_CONFIG, None, [override], ENV_DIR)


def test_missing_required_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("data: {uri: x.csv, target: y}\noutput: {model_dir: m}\n")
    with pytest.raises(ConfigError, match="config key tracking: required value is missing"):
        load_settings(config, None, [], ENV_DIR)


def test_settings_are_frozen() -> None:
    settings = load_settings(BASE_CONFIG, None, [], ENV_DIR)
    with pytest.raises(ValueError, match="frozen"):
        settings.split.seed = 1  # type: ignore[misc]


def test_flatten() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [1]}}, "e": {}}) == {"a.b": 1, "a.c.d": [1], "e": {}}


def test_cli_config_show_applies_layers() -> None:
    result = run_cli(
        "config",
        "show",
        "--config",
        str(BASE_CONFIG),
        "--env-dir",
        str(ENV_DIR),
        "--env",
        "prod",
        "model.name=lightgbm",
        "--json",
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["model"]["name"] == "lightgbm"
    assert shown["data"]["uri"].startswith("gs://")
    assert shown["data"]["target"] == "Purchase"


def test_cli_config_schema_describes_every_section() -> None:
    result = run_cli("config", "schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert {"data", "split", "model", "tracking", "output"} <= set(schema["properties"])
    assert "description" in schema["$defs"]["SplitConfig"]["properties"]["cv_folds"]


def test_cli_bad_config_is_one_line_without_traceback() -> None:
    result = run_cli("config", "show", "--config", str(BASE_CONFIG), "split.bogus=1")
    assert result.exit_code == 1
    assert "config key split.bogus: unknown key" in result.stderr
    assert "Traceback" not in result.output


def test_config_show_prints_the_effective_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """A null tracking.uri is resolved before validation: env var, else the embedded store."""
    args = ("config", "show", "--config", str(BASE_CONFIG), "--json")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shown = json.loads(run_cli(*args).stdout)
    assert shown["tracking"]["uri"] == "sqlite:///mlruns.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert json.loads(run_cli(*args).stdout)["tracking"]["uri"] == "http://mlflow.example:5000"
    explicit = json.loads(run_cli(*args, "tracking.uri=sqlite:///other.db").stdout)
    assert explicit["tracking"]["uri"] == "sqlite:///other.db"
