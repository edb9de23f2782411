"""The tune and split sections of the config: validated strictly, and the default search space
covers every algorithm in the registry with parameters its estimator accepts."""

from __future__ import annotations

from typing import Any

import pytest

from mlship.config import ModelConfig, ParamRange, Task, load_settings
from mlship.errors import ConfigError
from mlship.training.pipeline import REGISTRY, make_estimator
from tests.conftest import BASE_CONFIG, ENV_DIR


def settings(*overrides: str) -> Any:
    return load_settings(BASE_CONFIG, None, list(overrides), ENV_DIR)


def test_every_registry_algorithm_has_a_default_space() -> None:
    assert set(settings().tune.space) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_default_space_param_is_accepted_by_its_estimator(name: str) -> None:
    space = settings().tune.space[name]
    for pick in (0, -1):  # both ends of each range, first and last choice
        params = {
            key: (r.choices[pick] if r.choices is not None else (r.low, r.high)[pick])
            for key, r in space.items()
        }
        spec = REGISTRY[name]
        task = Task.classification if spec.classifier else Task.regression
        make_estimator(ModelConfig(name=name, params={name: params}), task, 0)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tune.space.ridge.alpha={low: 2, high: 1}", "low 2 is above high 1"),
        ("tune.space.ridge.alpha={low: 0, high: 1, log: true}", "log needs low > 0"),
        ("tune.space.ridge.beta={low: 1}", "give low and high, or choices"),
        ("tune.space.ridge.alpha={low: 1, high: 2, choices: [1]}", "not both"),
        ("tune.space.ridge.alpha={lo: 1, high: 2}", "tune.space.ridge.alpha.lo: unknown key"),
        ("tune.cv_folds=1", "tune.cv_folds"),
        ("split.strategy=time", "strategy time needs split.time_column"),
        ("split.strategy=group", "strategy group needs split.group_column"),
        ("split.strategy=future", "split.strategy"),
    ],
)
def test_bad_tune_and_split_settings_are_one_line_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(override)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_integer_ranges_stay_integers() -> None:
    assert ParamRange(low=1, high=5).integer
    assert not ParamRange(low=1, high=5.0).integer
    space = settings().tune.space
    assert (
        space["lightgbm"]["num_leaves"].integer and not space["lightgbm"]["learning_rate"].integer
    )
