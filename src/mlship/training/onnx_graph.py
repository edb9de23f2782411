"""What the two hand-written ONNX twins (``linear_onnx``, ``tree_onnx``) share.

Both read the same fitted parts: the category steps ``training.pipeline`` builds (the
missing-marker imputer and a one-hot encoder with its defaults) and a classifier's classes.
So both look a category column's text up in the same table (``category_table``: the known
categories, then the missing marker with its fill's entry), to its one-hot position or, for
a linear model with one output, straight to its weight; and both end in the same ``label`` /
``probabilities`` outputs. ``Graph`` collects nodes and constants
with generated names that no column can take.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlship.scoring.columns import MISSING_CATEGORY
from mlship.training.forest_onnx import class_table

OUTPUTS = ("label", "probabilities", "variable")  # the names skl2onnx gives them
PREFIX = "mlship_"  # of every name a Graph generates, so none can be a column's
_ONEHOT_DEFAULTS = {
    "drop": None, "handle_unknown": "ignore", "min_frequency": None, "max_categories": None,
}  # fmt: skip


class Graph:
    """Nodes and constants with generated names, in the order they are added."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def _name(self, prefix: str) -> str:
        return f"{PREFIX}{prefix}_{len(self.nodes) + len(self.initializers)}"

    def const(self, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self._name("c")
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        out = output or self._name(op.lower())
        domain = attrs.pop("op_domain", "")
        self.nodes.append(helper.make_node(op, inputs, [out], domain=domain, **attrs))
        return out

    def rename_last(self, name: str) -> None:
        """Give the last node's output ``name`` (a graph output), instead of an ``Identity``."""
        self.nodes[-1].output[0] = name


def names_clash(columns: list[str]) -> bool:
    """Whether a column would share a name with an output or a generated name."""
    return any(c in OUTPUTS or c.startswith(PREFIX) for c in columns)


def plain_columns(pre: Any) -> bool:
    """Whether a ColumnTransformer only selects and concatenates its transformers' outputs:
    nothing else passed through, nothing scaled by ``transformer_weights``."""
    return getattr(pre, "remainder", None) == "drop" and not getattr(
        pre, "transformer_weights", None
    )


def step_names(step: Any) -> list[str]:
    """A transformer's step names if it is a Pipeline; [] for a bare one or ``"drop"``."""
    return [*getattr(step, "named_steps", {})]


def known_categories(steps: Any) -> bool:
    """Whether a category pipeline is the one ``training.pipeline`` builds, defaults and all."""
    onehot, imputer = steps["onehot"], steps["impute"]
    if any(onehot.get_params()[k] != v for k, v in _ONEHOT_DEFAULTS.items()):
        return False
    if any(c.dtype.kind != "O" or MISSING_CATEGORY in set(c) for c in onehot.categories_):
        return False
    if imputer.missing_values != MISSING_CATEGORY or imputer.add_indicator:
        return False
    fills = imputer.statistics_
    if len(fills) != len(onehot.categories_):  # a column empty in training was dropped
        return False
    return all(f in set(c) for f, c in zip(fills, onehot.categories_, strict=True))


def category_table(known: list[str], fill: str, values: list[Any]) -> tuple[list[str], list[Any]]:
    """A category ``LabelEncoder``'s keys and values: each known category's value (``values``
    in the order of ``known``), then the imputer's missing marker with its fill's."""
    return [*known, MISSING_CATEGORY], [*values, values[known.index(fill)]]


def category_positions(g: Graph, column: str, known: list[str], fill: str) -> str:
    """The column's one-hot position a row, flat: the imputer's missing marker takes its
    fill's, and an unknown category ``len(known)``, the index of a zero row."""
    keys, values = category_table(known, fill, list(range(len(known))))
    codes = g.node(
        "LabelEncoder",
        [column],
        keys_strings=keys,
        values_int64s=values,
        default_int64=len(known),
        op_domain="ai.onnx.ml",
    )
    return g.node("Reshape", [codes, g.const(np.asarray([-1], dtype=np.int64))])


def categories(steps: Any, columns: list[str]) -> list[tuple[str, list[str], str]]:
    """Each category column with its known categories (as text) and its fill, in order."""
    onehot, fills = steps["onehot"], steps["impute"].statistics_
    return [
        (column, [str(k) for k in known], str(fill))
        for column, known, fill in zip(columns, onehot.categories_, fills, strict=True)
    ]


def labelled(g: Graph, classes: np.ndarray) -> list[Any]:
    """The ``label`` output (the class at the argmax of ``probabilities``) and both outputs'
    declarations; the graph must already compute ``probabilities``."""
    from onnx import TensorProto, helper

    index = g.node("ArgMax", ["probabilities"], axis=1, keepdims=0)
    values, kind = class_table(classes)
    g.node("Gather", [g.const(values), index], "label", axis=0)
    return [
        helper.make_tensor_value_info("label", kind, [None]),
        helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, len(classes)]),
    ]


def model(
    g: Graph,
    name: str,
    numeric: list[str],
    categorical: list[str],
    outputs: list[Any],
    ml_opset: int,
) -> Any:
    """The ``onnx.ModelProto``: one (rows, 1) input per column, as every twin takes them."""
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(c, TensorProto.DOUBLE, [None, 1]) for c in numeric]
    inputs += [helper.make_tensor_value_info(c, TensorProto.STRING, [None, 1]) for c in categorical]
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.initializers)
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", ml_opset)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)
