"""Building pipelines from the registry, and the errors for bad names and params."""

from __future__ import annotations

import pytest

from mlship.config import ModelConfig, Task
from mlship.errors import ModelError
from mlship.training.pipeline import REGISTRY, build_pipeline, make_estimator


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_estimator_builds_for_its_tasks(name: str) -> None:
    spec = REGISTRY[name]
    for task in Task:
        if spec.path(task) is None:
            continue
        pipe = build_pipeline(["a"], ["b"], ModelConfig(name=name), task, seed=3)
        estimator = pipe.named_steps["model"]
        params = estimator.get_params()
        if "random_state" in params:
            assert params["random_state"] == 3


def test_params_pass_through() -> None:
    est = make_estimator(
        ModelConfig(name="random_forest", params={"random_forest": {"max_depth": 4}}),
        Task.classification,
        0,
    )
    assert est.get_params()["max_depth"] == 4
    assert est.get_params()["n_estimators"] == 200  # registry default kept


def test_unknown_param_is_named_with_suggestion() -> None:
    config = ModelConfig(name="random_forest", params={"random_forest": {"max_dept": 4}})
    with pytest.raises(
        ModelError, match=r"params.random_forest.max_dept: .*did you mean 'max_depth'"
    ):
        make_estimator(config, Task.classification, 0)


def test_params_of_other_algorithms_are_kept_but_unused() -> None:
    config = ModelConfig(
        name="ridge", params={"lightgbm": {"num_leaves": 3}, "ridge": {"alpha": 2}}
    )
    assert make_estimator(config, Task.regression, 0).get_params()["alpha"] == 2


def test_params_for_an_unknown_algorithm_are_named() -> None:
    config = ModelConfig(name="ridge", params={"catboost": {"depth": 3}})
    with pytest.raises(ModelError, match=r"model\.params\.catboost: not an algorithm"):
        make_estimator(config, Task.regression, 0)


def test_unknown_algorithm_is_named_with_suggestion() -> None:
    with pytest.raises(ModelError, match=r"model.name 'lightgb'.*did you mean 'lightgbm'"):
        make_estimator(ModelConfig(name="lightgb"), Task.classification, 0)


def test_algorithm_task_mismatch() -> None:
    with pytest.raises(ModelError, match="does not support task 'regression'"):
        make_estimator(ModelConfig(name="logistic_regression"), Task.regression, 0)


def test_lightgbm_accepts_its_own_kwargs() -> None:
    est = make_estimator(
        ModelConfig(name="lightgbm", params={"lightgbm": {"num_leaves": 7}}), Task.regression, 0
    )
    assert est.get_params()["num_leaves"] == 7
