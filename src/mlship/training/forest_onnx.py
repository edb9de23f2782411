"""Tree ensembles as ONNX ``TreeEnsemble`` (ai.onnx.ml opset 5) in double precision.

skl2onnx and onnxmltools emit the float32 tree operators, whose float32 thresholds send rows
that sit near a split down the other branch; they do not convert HistGradientBoosting at all.
Here every tree ensemble we train is written from its ``Forest`` (``forests``) as one
``TreeEnsemble`` node with float64 thresholds and leaf weights, float64 output, and NaN sent
down the branch the library sends it. The link (sigmoid, softmax, mean) follows in float64.

``register()`` installs these converters (and a float64 ``SimpleImputer``: the ai.onnx.ml
``Imputer`` has no double kernel in onnxruntime) into skl2onnx for this process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from onnx import TensorProto, numpy_helper

from mlship.training import forests
from mlship.training.forests import Forest, Tree

ML_OPSET = 5
# What the node is declared as while skl2onnx (which knows ml opsets up to 3) builds the
# graph; ``compile`` raises the model's ai.onnx.ml import to ``ML_OPSET`` afterwards.
DECLARED_OPSET = 3
BRANCH_LEQ, BRANCH_LT = 0, 1


def _tree_arrays(tree: Tree, column: int, out: dict[str, list[Any]], mode: int) -> None:
    """Append one tree's nodes (its leaves' column ``column``) to the ensemble's arrays."""
    leaves_before = len(out["leaf_weights"])
    if tree.feature[0] < 0:  # a single leaf: one split whose two branches meet at it
        out["tree_roots"].append(len(out["nodes_featureids"]))
        _split(out, (0, 0.0, mode, False), (leaves_before, 1), (leaves_before, 1))
        out["leaf_weights"].append(float(tree.value[0, column]))
        out["leaf_targetids"].append(column if tree.target is None else tree.target)
        return
    interior = np.flatnonzero(tree.feature >= 0)
    leaves = np.flatnonzero(tree.feature < 0)
    interior_id = {int(n): len(out["nodes_featureids"]) + i for i, n in enumerate(interior)}
    leaf_id = {int(n): leaves_before + i for i, n in enumerate(leaves)}
    out["tree_roots"].append(interior_id[0])

    def child(node: int) -> tuple[int, int]:
        return (leaf_id[node], 1) if node in leaf_id else (interior_id[node], 0)

    for n in interior:
        split = (int(tree.feature[n]), float(tree.threshold[n]), mode, bool(tree.missing_left[n]))
        _split(out, split, child(int(tree.left[n])), child(int(tree.right[n])))
    out["leaf_weights"] += [float(v) for v in tree.value[leaves, column]]
    target = column if tree.target is None else tree.target
    out["leaf_targetids"] += [target] * len(leaves)


def _split(
    out: dict[str, list[Any]],
    split: tuple[int, float, int, bool],
    true: tuple[int, int],
    false: tuple[int, int],
) -> None:
    feature, threshold, mode, missing_true = split
    out["nodes_featureids"].append(feature)
    out["nodes_splits"].append(threshold)
    out["nodes_modes"].append(mode)
    out["nodes_missing_value_tracks_true"].append(int(missing_true))
    out["nodes_truenodeids"].append(true[0])
    out["nodes_trueleafs"].append(true[1])
    out["nodes_falsenodeids"].append(false[0])
    out["nodes_falseleafs"].append(false[1])


_KEYS = [
    "tree_roots", "nodes_featureids", "nodes_splits", "nodes_modes",
    "nodes_missing_value_tracks_true", "nodes_truenodeids", "nodes_trueleafs",
    "nodes_falsenodeids", "nodes_falseleafs", "leaf_weights", "leaf_targetids",
]  # fmt: skip


def ensemble_attributes(forest: Forest) -> dict[str, Any]:
    """The ``TreeEnsemble`` attributes: a one-column tree once, a k-column tree k times."""
    out: dict[str, list[Any]] = {key: [] for key in _KEYS}
    mode = BRANCH_LT if forest.strict else BRANCH_LEQ
    for tree in forest.trees:
        for column in range(tree.value.shape[1]):
            _tree_arrays(tree, column, out, mode)
    attrs: dict[str, Any] = {k: v for k, v in out.items()}
    attrs["nodes_splits"] = numpy_helper.from_array(np.asarray(out["nodes_splits"], np.float64))
    attrs["leaf_weights"] = numpy_helper.from_array(np.asarray(out["leaf_weights"], np.float64))
    attrs["nodes_modes"] = numpy_helper.from_array(np.asarray(out["nodes_modes"], np.uint8))
    attrs |= {"n_targets": forest.n_targets, "aggregate_function": 1, "post_transform": 0}
    return attrs


# Which reader understands which fitted estimator (by class name, so nothing is imported).
READERS: dict[str, Callable[[Any], Forest]] = {
    "RandomForestClassifier": forests.random_forest,
    "RandomForestRegressor": forests.random_forest,
    "HistGradientBoostingClassifier": forests.hist_gradient_boosting,
    "HistGradientBoostingRegressor": forests.hist_gradient_boosting,
    "LGBMClassifier": forests.lightgbm,
    "LGBMRegressor": forests.lightgbm,
    "XGBoostClassifier": forests.xgboost,
    "XGBClassifier": forests.xgboost,
    "XGBRegressor": forests.xgboost,
}


def read_forest(estimator: Any) -> Forest:
    reader = READERS.get(type(estimator).__name__)
    if reader is None:
        raise forests.UnsupportedTreeError(f"no tree reader for {type(estimator).__name__}")
    return reader(estimator)


def is_forest(estimator: Any) -> bool:
    return type(estimator).__name__ in READERS


class _Graph:
    """A thin helper over skl2onnx's scope and container: one call per ONNX node."""

    def __init__(self, scope: Any, container: Any) -> None:
        self.scope, self.container = scope, container

    def const(self, value: np.ndarray, kind: int = TensorProto.DOUBLE) -> str:
        name: str = self.scope.get_unique_variable_name("c")
        flat = value.ravel().tolist()
        self.container.add_initializer(name, kind, list(value.shape), flat)
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        out = output or self.scope.get_unique_variable_name(op.lower())
        name = self.scope.get_unique_operator_name(op)
        domain = attrs.pop("op_domain", "")
        version = attrs.pop("op_version", None)
        self.container.add_node(
            op, inputs, [out], name=name, op_domain=domain, op_version=version, **attrs
        )
        return out


class Nodes(Protocol):
    """What a graph helper must offer here: skl2onnx's ``_Graph`` or ``onnx_graph.Graph``."""

    def const(self, value: np.ndarray) -> str: ...

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str: ...


def as_compared(g: Nodes, name: str, forest: Forest) -> str:
    """A float64 input as the library compares it: rounded through float32 where it does."""
    if not forest.float32_inputs:
        return name
    return g.node("Cast", [g.node("Cast", [name], to=TensorProto.FLOAT)], to=TensorProto.DOUBLE)


def _features(g: _Graph, name: str, forest: Forest) -> str:
    """skl2onnx's matrix (of either float type) as float64, as the library compares it."""
    if forest.float32_inputs:
        return as_compared(g, name, forest)
    return g.node("Cast", [name], to=TensorProto.DOUBLE)


def score(g: Nodes, forest: Forest, raw: str) -> str:
    """``link((base + raw) / divisor)`` in float64; for two classes, both columns."""
    if forest.base.any():
        raw = g.node("Add", [raw, g.const(forest.base.reshape(1, -1))])
    if forest.divisor != 1.0:
        raw = g.node("Div", [raw, g.const(np.asarray([forest.divisor]))])
    if forest.link == "softmax":
        return g.node("Softmax", [raw], axis=1)
    if forest.link in ("logistic", "complement"):
        positive = raw
        if forest.link == "logistic":
            if forest.sigmoid_scale != 1.0:
                raw = g.node("Mul", [raw, g.const(np.asarray([forest.sigmoid_scale]))])
            positive = g.node("Sigmoid", [raw])
        negative = g.node("Sub", [g.const(np.asarray([1.0])), positive])
        return g.node("Concat", [negative, positive], axis=1)
    return raw


def convert_forest(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter: features -> TreeEnsemble -> link; label by argmax of classes."""
    forest = read_forest(operator.raw_operator)
    g = _Graph(scope, container)
    x = _features(g, operator.inputs[0].full_name, forest)
    attrs = ensemble_attributes(forest) | {"op_domain": "ai.onnx.ml", "op_version": DECLARED_OPSET}
    raw = g.node("TreeEnsemble", [x], **attrs)
    scored = score(g, forest, raw)
    if len(operator.outputs) == 1:  # a regressor
        g.node("Identity", [scored], operator.outputs[0].full_name)
        return
    g.node("Identity", [scored], operator.outputs[1].full_name)
    index = g.node("ArgMax", [scored], axis=1, keepdims=0)
    table = g.const(*class_table(operator.raw_operator.classes_))
    g.node("Gather", [table, index], operator.outputs[0].full_name, axis=0)


def class_table(classes: Any) -> tuple[np.ndarray, int]:
    """The classes as the ``label`` output holds them, and that tensor's element type:
    integers stay int64, anything else is its text."""
    values = np.asarray(classes)
    if values.dtype.kind in "iu":
        return values.astype(np.int64), TensorProto.INT64
    return values.astype(str).astype(object), TensorProto.STRING
