"""Tree pipelines as one small float64 ONNX graph: the trees' matrix, then the trees.

In front of a tree ensemble ``training.pipeline`` puts only what the trees need: numbers pass
through, and each category column is imputed (the missing marker to its most frequent value)
and one-hot encoded. skl2onnx writes those steps as 22 nodes of string copies, casts and
one-hot encoders in front of the one ``TreeEnsemble`` (30 in all for OJ's boosted trees);
onnxruntime runs each of them per request, and at one row they cost more than the trees.
This writes the same matrix directly:

- the numbers: one ``Concat`` of the inputs (float64 already; rounded through float32 first
  for the libraries whose trees compare float32, as ``forest_onnx`` does);
- each category column: its one-hot position (``onnx_graph.category_positions``) and a
  ``Gather`` of that row of an identity table whose extra last row is zeros (an unknown
  category), which is the one-hot block;
- one ``Concat`` of both, in the transformer's order, then ``forest_onnx``'s ensemble and link.

Any other pipeline (a calibrated model, other encoder options, transformer weights, a bare
encoder, a column named like an output) returns None and goes through skl2onnx, whose
converter writes the same ensemble.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper

from mlship.config import Task
from mlship.training import forest_onnx, onnx_graph
from mlship.training.forests import Forest, UnsupportedTreeError
from mlship.training.onnx_graph import Graph

_ROLES = {"numeric": "passthrough", "categorical": ["impute", "onehot"]}


def _steps(model: Any, numeric: list[str], categorical: list[str]) -> dict[str, Any] | None:
    """The fitted category steps (or {} without categories); None for another shape."""
    if onnx_graph.names_clash([*numeric, *categorical]):
        return None
    steps = getattr(model, "named_steps", {})
    estimator, pre = steps.get("model"), steps.get("preprocess")
    if not forest_onnx.is_forest(estimator) or pre is None or len(steps) != 2:
        return None
    if not onnx_graph.plain_columns(pre):
        return None
    return _transformers(pre, {"numeric": numeric, "categorical": categorical})


def _transformers(pre: Any, expected: dict[str, list[str]]) -> dict[str, Any] | None:
    declared = {name: step for name, step, _ in pre.transformers}
    fitted = [t for t in pre.transformers_ if t[0] != "remainder"]
    if [t[0] for t in fitted] != [n for n in _ROLES if expected[n]]:
        return None  # numbers first, then categories: the order of the trees' features
    found: dict[str, Any] = {}
    for name, step, columns in fitted:
        if list(columns) != expected[name]:
            return None
        if name == "numeric" and declared.get("numeric") != _ROLES["numeric"]:
            return None
        if name == "categorical":
            if onnx_graph.step_names(step) != _ROLES["categorical"]:
                return None
            if not onnx_graph.known_categories(step.named_steps):
                return None
            found = dict(step.named_steps)
    return found


def _matrix(g: Graph, numeric: list[str], categorical: list[str], steps: dict[str, Any],
            forest: Forest) -> str:  # fmt: skip
    """The transformer's output, float64, with numbers as the trees compare them."""
    parts = []
    if numeric:
        x = g.node("Concat", numeric, axis=1) if len(numeric) > 1 else numeric[0]
        parts.append(forest_onnx.as_compared(g, x, forest))
    for column, known, fill in onnx_graph.categories(steps, categorical) if categorical else []:
        positions = onnx_graph.category_positions(g, column, known, fill)
        table = np.vstack([np.eye(len(known)), np.zeros((1, len(known)))])
        parts.append(g.node("Gather", [g.const(table), positions], axis=0))
    return g.node("Concat", parts, axis=1) if len(parts) > 1 else parts[0]


def build(model: Any, numeric: list[str], categorical: list[str], task: Task) -> Any | None:
    """The graph (an ``onnx.ModelProto``) for a tree pipeline we know, or None."""
    steps = _steps(model, numeric, categorical)
    if steps is None:
        return None
    estimator = model.named_steps["model"]
    try:
        forest = forest_onnx.read_forest(estimator)
    except UnsupportedTreeError:
        return None  # skl2onnx's path meets the same reader, and reports why
    g = Graph()
    x = _matrix(g, numeric, categorical, steps, forest)
    attrs = forest_onnx.ensemble_attributes(forest) | {"op_domain": "ai.onnx.ml"}
    forest_onnx.score(g, forest, g.node("TreeEnsemble", [x], **attrs))  # the last node's output
    if task is Task.classification:
        g.rename_last("probabilities")
        outputs = onnx_graph.labelled(g, np.asarray(estimator.classes_))
    else:
        g.rename_last("variable")
        outputs = [helper.make_tensor_value_info("variable", TensorProto.DOUBLE, [None, 1])]
    return onnx_graph.model(g, "mlship_trees", numeric, categorical, outputs, forest_onnx.ML_OPSET)
