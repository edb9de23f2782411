"""The model: a feature transformer plus an estimator chosen by name from a small registry.

Estimator classes are imported only when chosen, so importing mlship never loads LightGBM.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlship.config import ModelConfig, Task
from mlship.errors import ModelError
from mlship.scoring.columns import MISSING_CATEGORY
from mlship.training.calibration import calibrated


@dataclass(frozen=True)
class EstimatorSpec:
    """Where an algorithm's classes live, per task, and the defaults we prefer to sklearn's."""

    classifier: str | None
    regressor: str | None
    defaults: dict[str, Any] = field(default_factory=dict)

    def path(self, task: Task) -> str | None:
        return self.classifier if task is Task.classification else self.regressor


# Single-threaded by default: serving runs one model per worker process and training data here
# is small; n_jobs/num_threads in model.params turn parallelism back on.
REGISTRY: dict[str, EstimatorSpec] = {
    "logistic_regression": EstimatorSpec(
        "sklearn.linear_model:LogisticRegression", None, {"max_iter": 1000}
    ),
    "ridge": EstimatorSpec(None, "sklearn.linear_model:Ridge"),
    "random_forest": EstimatorSpec(
        "sklearn.ensemble:RandomForestClassifier",
        "sklearn.ensemble:RandomForestRegressor",
        {"n_estimators": 200, "n_jobs": 1},
    ),
    "hist_gradient_boosting": EstimatorSpec(
        "sklearn.ensemble:HistGradientBoostingClassifier",
        "sklearn.ensemble:HistGradientBoostingRegressor",
    ),
    "lightgbm": EstimatorSpec(
        "lightgbm:LGBMClassifier",
        "lightgbm:LGBMRegressor",
        {"n_estimators": 200, "verbose": -1, "n_jobs": 1},
    ),
    # The CPU-only wheel (xgboost-cpu, the train extra); the classifier takes any labels.
    "xgboost": EstimatorSpec(
        "mlship.training.xgboost_model:XGBoostClassifier",
        "xgboost:XGBRegressor",
        {"n_estimators": 200, "n_jobs": 1, "tree_method": "hist", "verbosity": 0},
    ),
}
# Tree ensembles split on thresholds: scaling changes nothing for them, and each routes a
# missing value down a branch it learned, so their numbers reach them as they are.
TREE_MODELS = frozenset({"random_forest", "hist_gradient_boosting", "lightgbm", "xgboost"})
# What scoring such a model with scikit-learn needs beyond scikit-learn itself (distribution
# names, for the model's pinned requirements). The ONNX twin needs none of them.
SKLEARN_RUNTIME_EXTRAS: dict[str, list[str]] = {
    "lightgbm": ["lightgbm"],
    "xgboost": ["xgboost-cpu"],
}


def sklearn_runtime_packages(name: str) -> list[str]:
    """The packages beyond scikit-learn that unpickling and scoring ``name``'s model needs."""
    return list(SKLEARN_RUNTIME_EXTRAS.get(name, []))


def _load_class(path: str) -> type[BaseEstimator]:
    module, _, name = path.partition(":")
    cls: type[BaseEstimator] = getattr(importlib.import_module(module), name)
    return cls


def make_estimator(config: ModelConfig, task: Task, seed: int) -> BaseEstimator:
    """Instantiate the configured estimator; unknown names and parameters are named errors."""
    spec = REGISTRY.get(config.name)
    if spec is None:
        close = difflib.get_close_matches(config.name, REGISTRY, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ModelError(
            f"model.name {config.name!r} is not in the registry "
            f"({', '.join(sorted(REGISTRY))}){hint}"
        )
    path = spec.path(task)
    if path is None:
        fits = sorted(n for n, s in REGISTRY.items() if s.path(task))
        raise ModelError(
            f"model.name {config.name!r} does not support task {task.value!r} "
            f"(choose one of {', '.join(fits)})"
        )
    strays = sorted(set(config.params) - set(REGISTRY))
    if strays:
        raise ModelError(
            f"model.params.{strays[0]}: not an algorithm of the registry "
            f"({', '.join(sorted(REGISTRY))})"
        )
    chosen = config.chosen_params()
    cls = _load_class(path)
    init_params = inspect.signature(cls.__init__).parameters
    accepted = set(init_params) - {"self", "kwargs"}
    if "kwargs" in init_params:
        accepted |= set(cls().get_params())
    unknown = [key for key in chosen if key not in accepted]
    if unknown:
        close = difflib.get_close_matches(unknown[0], accepted, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ModelError(
            f"model.params.{config.name}.{unknown[0]}: not a parameter of {cls.__name__}{hint}"
        )
    params = {**spec.defaults, **chosen}
    if "random_state" in accepted and "random_state" not in params:
        params["random_state"] = seed
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"model.params.{config.name}: {cls.__name__} rejected them: {exc}"
        ) from None


def make_preprocessor(
    numeric: list[str], categorical: list[str], trees: bool = False
) -> ColumnTransformer:
    """Impute and scale numbers; impute and one-hot encode categories (unknown ones ignored).

    For tree ensembles (``trees``) numbers pass through untouched, NaN included: the trees
    route missing values themselves, as they learned to in training.
    """
    numeric_steps: Pipeline | str = (
        "passthrough"
        if trees
        else Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    )
    categorical_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent", missing_values=MISSING_CATEGORY)),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    transformers = []
    if numeric:
        transformers.append(("numeric", numeric_steps, numeric))
    if categorical:
        transformers.append(("categorical", categorical_steps, categorical))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)


def build_pipeline(
    numeric: list[str], categorical: list[str], config: ModelConfig, task: Task, seed: int
) -> Pipeline:
    """The full model, unfitted; a classifier's estimator calibrated if ``model.calibration``."""
    estimator = make_estimator(config, task, seed)
    if config.calibration != "none" and task is Task.classification:
        estimator = calibrated(estimator, config.calibration, config.calibration_folds)
    return Pipeline(
        [
            ("preprocess", make_preprocessor(numeric, categorical, config.name in TREE_MODELS)),
            ("model", estimator),
        ]
    )
