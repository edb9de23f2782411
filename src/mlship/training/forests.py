"""Fitted tree ensembles read into one neutral form, exactly as each library predicts with them.

A ``Forest`` is what the ONNX ``TreeEnsemble`` emitter (``forest_onnx``) needs: per tree the
split feature, threshold, children, where a missing value (NaN) goes, and leaf values; plus
how the sum of the trees becomes a score. The rules are the libraries' own, read from their
prediction code, so the compiled twin can follow the same branches on every row:

- scikit-learn trees (random forest) round the input to float32 and go left when
  ``x <= threshold`` (a float64 threshold); NaN goes where ``missing_go_to_left`` says.
- HistGradientBoosting compares float64 input with ``num_threshold``; NaN as the node says.
- LightGBM compares float64 with its double threshold; NaN goes ``default_left`` when the node
  learned missing values (``missing_type`` NaN), otherwise it is read as 0.0.
- XGBoost rounds the input to float32 and goes left when ``x < split_condition``.

Anything else (categorical splits, other objectives, DART, zero-as-missing) raises
``UnsupportedTreeError``, and the model keeps serving with scikit-learn.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

# "proba": the mean of the trees is each class's probability. "complement": the trees hold the
# second of two classes only and the first is one minus it, which halves a binary forest.
Link = Literal["identity", "logistic", "softmax", "proba", "complement"]


class UnsupportedTreeError(ValueError):
    """This fitted model has a feature the converter does not reproduce exactly."""


@dataclass(frozen=True)
class Tree:
    """One tree as parallel node arrays; ``feature[i] < 0`` marks a leaf.

    ``value`` holds each leaf's output, one column per target; ``target`` says which target
    a one-column tree adds to (None: column ``k`` adds to target ``k``).
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray
    target: int | None = None


@dataclass(frozen=True)
class Forest:
    """Trees plus how their sum becomes the score: ``link((base + sum) / divisor)``."""

    trees: list[Tree]
    n_targets: int
    base: np.ndarray
    link: Link
    float32_inputs: bool = False
    strict: bool = False  # x < threshold goes left (XGBoost), else x <= threshold
    divisor: float = 1.0
    sigmoid_scale: float = 1.0
    precision: Literal["double", "float"] = "double"  # what the library itself computes in


def _sklearn_tree(estimator: Any, classifier: bool) -> Tree:
    t = estimator.tree_
    value = np.asarray(t.value[:, 0, :], dtype=np.float64)
    if classifier:  # DecisionTreeClassifier.predict_proba normalises each leaf the same way
        normalizer = value.sum(axis=1)[:, None]
        normalizer[normalizer == 0.0] = 1.0
        value = value / normalizer
    missing = getattr(t, "missing_go_to_left", np.zeros(t.node_count, dtype=np.uint8))
    return Tree(
        feature=np.where(t.children_left < 0, -1, t.feature).astype(np.int64),
        threshold=np.asarray(t.threshold, dtype=np.float64),
        left=np.asarray(t.children_left, dtype=np.int64),
        right=np.asarray(t.children_right, dtype=np.int64),
        missing_left=np.asarray(missing, dtype=bool),
        value=value,
    )


def random_forest(model: Any) -> Forest:
    """RandomForestClassifier/Regressor: the mean of the trees' leaf proportions or values."""
    classifier = hasattr(model, "classes_")
    if classifier and getattr(model, "n_outputs_", 1) != 1:
        raise UnsupportedTreeError("multi-output forests")
    trees = [_sklearn_tree(e, classifier) for e in model.estimators_]
    n_targets = len(model.classes_) if classifier else 1
    link: Link = "proba" if classifier else "identity"
    if n_targets == 2:  # each leaf's two proportions sum to one: keep the second
        trees = [replace(t, value=t.value[:, 1:]) for t in trees]
        n_targets, link = 1, "complement"
    return Forest(
        trees,
        n_targets,
        np.zeros(n_targets),
        link,
        float32_inputs=True,
        divisor=float(len(trees)),
    )


def _hgb_tree(nodes: np.ndarray) -> Tree:
    if nodes["is_categorical"].any():
        raise UnsupportedTreeError("categorical splits in HistGradientBoosting")
    leaf = nodes["is_leaf"].astype(bool)
    return Tree(
        feature=np.where(leaf, -1, nodes["feature_idx"]).astype(np.int64),
        threshold=nodes["num_threshold"].astype(np.float64),
        left=nodes["left"].astype(np.int64),
        right=nodes["right"].astype(np.int64),
        missing_left=nodes["missing_go_to_left"].astype(bool),
        value=nodes["value"].astype(np.float64)[:, None],
    )


_HGB_LINKS: dict[str, Link] = {
    "IdentityLink": "identity",
    "LogitLink": "logistic",
    "MultinomialLogit": "softmax",
}


def hist_gradient_boosting(model: Any) -> Forest:
    """HistGradientBoosting: baseline plus every iteration's tree per class."""
    link = _HGB_LINKS.get(type(model._loss.link).__name__)
    if link is None:
        raise UnsupportedTreeError(f"HistGradientBoosting loss {type(model._loss).__name__}")
    trees = [
        Tree(**{**_hgb_tree(p.nodes).__dict__, "target": k})
        for iteration in model._predictors
        for k, p in enumerate(iteration)
    ]
    base = np.asarray(model._baseline_prediction, dtype=np.float64).ravel()
    return Forest(trees, len(base), base, link)


def _lightgbm_tree(structure: dict[str, Any], target: int) -> Tree:
    nodes: list[dict[str, Any]] = []
    children: list[tuple[int, int]] = []
    stack = [structure]
    while stack:  # breadth does not matter: children are looked up by their own index
        node = stack.pop()
        nodes.append(node)
        children.append((-1, -1))
        if "leaf_value" not in node:
            stack += [node["right_child"], node["left_child"]]
    index = {id(n): i for i, n in enumerate(nodes)}
    feature, threshold, missing, value = [], [], [], []
    left, right = [], []
    for node in nodes:
        leaf = "leaf_value" in node
        feature.append(-1 if leaf else int(node["split_feature"]))
        threshold.append(0.0 if leaf else float(node["threshold"]))
        left.append(-1 if leaf else index[id(node["left_child"])])
        right.append(-1 if leaf else index[id(node["right_child"])])
        missing.append(False if leaf else _lightgbm_missing_left(node))
        value.append(float(node["leaf_value"]) if leaf else 0.0)
    return Tree(
        np.asarray(feature, dtype=np.int64),
        np.asarray(threshold, dtype=np.float64),
        np.asarray(left, dtype=np.int64),
        np.asarray(right, dtype=np.int64),
        np.asarray(missing, dtype=bool),
        np.asarray(value, dtype=np.float64)[:, None],
        target,
    )


def _lightgbm_missing_left(node: dict[str, Any]) -> bool:
    if node.get("decision_type") != "<=":
        raise UnsupportedTreeError(f"LightGBM decision type {node.get('decision_type')!r}")
    kind = node.get("missing_type", "None")
    if kind == "NaN":
        return bool(node["default_left"])
    if kind == "None":  # LightGBM reads NaN as 0.0 here
        return float(node["threshold"]) >= 0.0
    raise UnsupportedTreeError(f"LightGBM missing type {kind!r} (zero_as_missing)")


def lightgbm(model: Any) -> Forest:
    """LGBMClassifier/Regressor: the raw score is the plain sum (the average is in tree 0)."""
    dump = model.booster_.dump_model()
    objective = str(dump.get("objective", "")).split()
    per_iteration = int(dump["num_tree_per_iteration"])
    trees = [
        _lightgbm_tree(info["tree_structure"], i % per_iteration)
        for i, info in enumerate(dump["tree_info"])
    ]
    divisor = len(trees) / per_iteration if dump.get("average_output") else 1.0
    kind = objective[0] if objective else ""
    if kind == "binary":
        scale = float(objective[1].split(":")[1]) if len(objective) > 1 else 1.0
        return Forest(trees, 1, np.zeros(1), "logistic", divisor=divisor, sigmoid_scale=scale)
    if kind == "multiclass":
        return Forest(trees, per_iteration, np.zeros(per_iteration), "softmax", divisor=divisor)
    if kind == "regression":
        return Forest(trees, 1, np.zeros(1), "identity", divisor=divisor)
    raise UnsupportedTreeError(f"LightGBM objective {kind!r}")


def _xgboost_tree(raw: dict[str, Any], target: int) -> Tree:
    if any(int(s) != 0 for s in raw.get("split_type", [])):
        raise UnsupportedTreeError("categorical splits in XGBoost")
    left = np.asarray(raw["left_children"], dtype=np.int64)
    conditions = np.asarray(raw["split_conditions"], dtype=np.float32).astype(np.float64)
    return Tree(
        feature=np.where(left < 0, -1, np.asarray(raw["split_indices"], dtype=np.int64)),
        threshold=conditions,
        left=left,
        right=np.asarray(raw["right_children"], dtype=np.int64),
        missing_left=np.asarray(raw["default_left"], dtype=bool),
        value=conditions[:, None],  # a leaf's value is kept in split_conditions
        target=target,
    )


def _xgboost_base(learner: dict[str, Any], objective: str) -> np.ndarray:
    text = str(learner["learner_model_param"]["base_score"]).strip("[]")
    scores = np.asarray([float(s) for s in text.split(",")], dtype=np.float32).astype(np.float64)
    if objective == "binary:logistic":
        return np.asarray([math.log(s / (1.0 - s)) for s in scores])
    return scores


_XGB_LINKS: dict[str, Link] = {
    "binary:logistic": "logistic",
    "multi:softprob": "softmax",
    "multi:softmax": "softmax",
    "reg:squarederror": "identity",
}


def xgboost(model: Any) -> Forest:
    """XGBClassifier/Regressor (gbtree): base margin plus the trees of each class."""
    raw = json.loads(model.get_booster().save_raw("json"))
    learner = raw["learner"]
    objective = learner["objective"]["name"]
    link = _XGB_LINKS.get(objective)
    booster = learner["gradient_booster"]
    if link is None or booster["name"] != "gbtree":
        raise UnsupportedTreeError(f"XGBoost {booster['name']} with objective {objective!r}")
    info = booster["model"]["tree_info"]
    trees = [_xgboost_tree(t, int(c)) for t, c in zip(booster["model"]["trees"], info, strict=True)]
    base = _xgboost_base(learner, objective)
    n_targets = max(int(learner["learner_model_param"]["num_class"]), 1)
    if len(base) != n_targets:
        base = np.full(n_targets, base[0])
    return Forest(trees, n_targets, base, link, float32_inputs=True, strict=True, precision="float")
