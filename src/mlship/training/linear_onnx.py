"""Linear pipelines as one small float64 ONNX graph, written from the fitted parameters.

skl2onnx converts our linear pipeline step by step: the category imputer as string
``LabelEncoder``/``Where`` nodes, the columns merged into string tensors and split again, the
scaler as ``Sub``/``Div``, one-hot encoders, a ``Concat`` of everything and a ``MatMul``.
That is 35 nodes, most of them copying strings, and 0.5 ms of a 1,000-row request. The model
underneath is a dot product, so this writes it as one:

- numbers: each input column a row of a (features, rows) block, ``Where(IsNaN(x), median, x)``,
  the mean taken off, then ``Gemm`` with ``coef / scale`` (the scaler's division folded into
  the weights) and the intercept;
- each category column: a ``LabelEncoder`` from the text straight to its weight for one
  output (two classes, a regressor), or to its one-hot position and a ``Gather`` of that
  position's weights for more; either way what a one-hot row times ``coef`` selects, the
  imputer's missing marker taking its fill's and an unknown category nothing;
- the link: ``Sigmoid`` for two classes (``[1 - p, p]``), ``Softmax`` for more, none for a
  regressor; the label is the class at ``ArgMax``, as for the trees.

Only the pipeline ``training.pipeline`` builds for logistic regression and ridge is written
here; anything else (other encoder options, one-vs-rest, a calibrated model) returns None and
goes through skl2onnx as before. Folding the division changes the arithmetic by rounding only,
and the parity report, as for every twin, decides whether the graph is kept.

The block is (features, rows), not (rows, features): onnxruntime broadcasts the median and
the mean over a row of the block at a time, so this layout gives it 14 long rows for OJ
instead of a thousand rows of 14, and takes a 1,000-row run from ~550 to ~470 us, ~90 to
~82 us for one row (docs/benchmarks.md). The block is the ``Transpose`` of a ``Concat``
along the columns, which also refuses columns of different lengths.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlship.config import Task
from mlship.training import onnx_graph
from mlship.training.onnx_graph import Graph

LINEAR = {"LogisticRegression", "Ridge"}


def _steps(model: Any, numeric: list[str], categorical: list[str]) -> dict[str, Any] | None:
    """The fitted parts this writer knows, by role; None if the pipeline is another shape."""
    if onnx_graph.names_clash([*numeric, *categorical]):
        return None  # a column would share a name with a node's output
    steps = getattr(model, "named_steps", {})
    estimator, pre = steps.get("model"), steps.get("preprocess")
    if type(estimator).__name__ not in LINEAR or pre is None or len(steps) != 2:
        return None
    if not _same_link(estimator) or not onnx_graph.plain_columns(pre):
        return None
    parts: dict[str, Any] = {"estimator": estimator}
    fitted = [t for t in pre.transformers_ if t[0] != "remainder"]
    if [t[0] for t in fitted] != [n for n in _ROLES if n in {t[0] for t in fitted}]:
        return None  # numbers first, then categories: the order of the weights
    for name, step, columns in fitted:
        expected = {"numeric": numeric, "categorical": categorical}.get(name)
        names = onnx_graph.step_names(step)
        if expected is None or list(columns) != expected or names != _ROLES[name]:
            return None
        parts[name] = step.named_steps
    return parts if _known_options(parts) else None


_ROLES = {"numeric": ["impute", "scale"], "categorical": ["impute", "onehot"]}


def _same_link(estimator: Any) -> bool:
    """Whether scikit-learn's probabilities are the ones written below: ``[1 - p, p]`` with
    ``p = expit(z)`` for two classes, ``softmax(z)`` for more. Not so, before scikit-learn 1.8,
    for ``multi_class="multinomial"`` over two classes (``softmax([-z, z])``) nor for
    one-vs-rest over more (``multi_class="ovr"`` or liblinear: normalised sigmoids)."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return True  # a regressor: no link
    mode = getattr(estimator, "multi_class", "auto")
    if len(classes) == 2:
        return mode in {"auto", "deprecated", "ovr"}
    return mode in {"auto", "deprecated", "multinomial"} and estimator.solver != "liblinear"


def _known_options(parts: dict[str, Any]) -> bool:
    numbers, categories = parts.get("numeric"), parts.get("categorical")
    return (numbers is None or _known_numbers(numbers)) and (
        categories is None or onnx_graph.known_categories(categories)
    )


def _known_numbers(steps: Any) -> bool:
    imputer, scaler = steps["impute"], steps["scale"]
    if imputer.strategy != "median" or imputer.add_indicator:
        return False
    if np.isnan(imputer.statistics_).any():  # a column empty in training is dropped
        return False
    return bool(scaler.with_mean and scaler.with_std)


def build(model: Any, numeric: list[str], categorical: list[str], task: Task) -> Any | None:
    """The graph (an ``onnx.ModelProto``) for a linear pipeline we know, or None."""
    parts = _steps(model, numeric, categorical)
    if parts is None:
        return None
    from onnx import TensorProto, helper

    estimator = parts["estimator"]
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))  # (outputs, features)
    intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64))
    g = Graph()
    terms: list[str] = []
    offset = 0
    if "numeric" in parts:
        offset = len(numeric)
        terms.append(_numbers(g, parts["numeric"], numeric, coef[:, :offset], intercept))
    else:
        terms.append(g.const(intercept.reshape(1, -1)))
    if "categorical" in parts:
        for column, known, fill in onnx_graph.categories(parts["categorical"], categorical):
            weights = coef[:, offset : offset + len(known)]
            offset += len(known)
            terms.append(_category(g, column, known, fill, weights))
    if offset != coef.shape[1]:
        return None
    score = terms[0]
    for term in terms[1:]:
        score = g.node("Add", [score, term])
    if task is Task.classification:
        outputs = _classify(g, score, np.asarray(estimator.classes_))
    else:
        g.node("Identity", [score], "variable")
        outputs = [helper.make_tensor_value_info("variable", TensorProto.DOUBLE, [None, 1])]
    return onnx_graph.model(g, "mlship_linear", numeric, categorical, outputs, ml_opset=4)


def _numbers(
    g: Graph, steps: Any, columns: list[str], coef: np.ndarray, intercept: np.ndarray
) -> str:
    """``(impute(x) - mean) @ (coef / scale).T + intercept``.

    The mean is taken off first, as the scaler does: folded into the intercept instead, a
    feature far from zero next to its spread (epoch seconds) cancels two large terms and loses
    what the parity contract allows (4e-8 relative for a ridge on epoch milliseconds).
    """
    median = steps["impute"].statistics_.astype(np.float64).reshape(-1, 1)
    scaler = steps["scale"]
    weights = (coef / scaler.scale_).T  # (features, outputs)
    x = g.node("Concat", columns, axis=1) if len(columns) > 1 else columns[0]
    x = g.node("Transpose", [x], perm=[1, 0])  # (features, rows)
    x = g.node("Where", [g.node("IsNaN", [x]), g.const(median), x])
    x = g.node("Sub", [x, g.const(scaler.mean_.astype(np.float64).reshape(-1, 1))])
    inputs = [x, g.const(weights), g.const(intercept.reshape(1, -1))]
    return g.node("Gemm", inputs, transA=1)  # x.T @ weights + intercept: (rows, outputs)


def _category(g: Graph, column: str, known: list[str], fill: str, weights: np.ndarray) -> str:
    """The column's share of the score: the weights of its one-hot position (zeros if unknown)."""
    if weights.shape[0] == 1:  # one output: the text maps to its weight, (rows, 1)
        from onnx import numpy_helper

        keys, values = onnx_graph.category_table(known, fill, weights[0].tolist())
        return g.node(
            "LabelEncoder",
            [column],
            keys_strings=keys,
            values_tensor=numpy_helper.from_array(np.asarray(values, dtype=np.float64)),
            default_tensor=numpy_helper.from_array(np.zeros(1)),
            op_domain="ai.onnx.ml",
        )
    flat = onnx_graph.category_positions(g, column, known, fill)
    table = np.vstack([weights.T, np.zeros((1, weights.shape[0]))])  # (categories + 1, outputs)
    return g.node("Gather", [g.const(table), flat], axis=0)


def _classify(g: Graph, score: str, classes: np.ndarray) -> list[Any]:
    if len(classes) == 2:
        positive = g.node("Sigmoid", [score])
        negative = g.node("Sub", [g.const(np.asarray([1.0])), positive])
        g.node("Concat", [negative, positive], "probabilities", axis=1)
    else:
        g.node("Softmax", [score], "probabilities", axis=1)
    return onnx_graph.labelled(g, classes)
