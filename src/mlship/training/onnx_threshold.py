"""A binary classifier's decision threshold written into its ONNX twin's ``label`` output.

The converters label by argmax. A model with a decision threshold labels ``positive`` iff
P(positive) >= threshold (``mlship.scoring.results.label_indices``); mlship's runtimes label
from the probabilities, but anyone serving ``model.onnx`` alone (Triton, bare onnxruntime)
reads the graph's own ``label``, so the graph must say the same:
``label = Where(P[:, positive] >= threshold, classes[positive], classes[other])``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from mlship.model.parity import ParityReport

LABEL = "label"
PROBABILITIES = "probabilities"


def apply_threshold(graph: Any, classes: list[str], positive: int, threshold: float) -> None:
    """Rewrite ``graph`` (an ``onnx.ModelProto``) in place: its ``label`` output follows the
    threshold. The argmax label stays computed under another name, used by nothing."""
    from onnx import TensorProto, helper, numpy_helper

    outputs = {o.name: o for o in graph.graph.output}
    proba_type = outputs[PROBABILITIES].type.tensor_type.elem_type
    label_type = outputs[LABEL].type.tensor_type.elem_type
    argmax_label = "mlship_argmax_label"
    for node in graph.graph.node:
        node.output[:] = [argmax_label if name == LABEL else name for name in node.output]
    proba_dtype = np.float64 if proba_type == TensorProto.DOUBLE else np.float32
    if label_type == TensorProto.STRING:
        names: Any = np.array([classes[positive], classes[1 - positive]], dtype=object)
    else:
        names = np.array([int(classes[positive]), int(classes[1 - positive])], dtype=np.int64)
    constants = {
        "mlship_positive_column": np.array(positive, dtype=np.int64),
        "mlship_threshold": np.array(threshold, dtype=proba_dtype),
        "mlship_positive_label": names[:1].reshape(()),
        "mlship_negative_label": names[1:].reshape(()),
    }
    graph.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in constants.items())
    graph.graph.node.extend(
        [
            helper.make_node(
                "Gather", [PROBABILITIES, "mlship_positive_column"], ["mlship_p_positive"], axis=1
            ),
            helper.make_node(
                "GreaterOrEqual", ["mlship_p_positive", "mlship_threshold"], ["mlship_is_positive"]
            ),
            helper.make_node(
                "Where",
                ["mlship_is_positive", "mlship_positive_label", "mlship_negative_label"],
                [LABEL],
            ),
        ]
    )


def check_graph_labels(
    report: ParityReport,
    model: Any,
    reference: np.ndarray,
    graph_labels: Any,
    decide: Callable[[np.ndarray], np.ndarray] | None,
) -> ParityReport:
    """A twin whose own ``label`` output differs from the model's labels anywhere fails:
    whoever serves ``model.onnx`` alone reads that output, not our probabilities."""
    if not report.passed:
        return report
    classes = np.asarray(model.classes_)
    want = classes[decide(reference) if decide else reference.argmax(axis=1)]
    differ = int((np.asarray(graph_labels).ravel().astype(str) != want.astype(str)).sum())
    if not differ:
        return report
    reason = f"the graph's label output differs from the model's on {differ} row(s)"
    return replace(report, passed=False, reason=reason, label_mismatches=differ)
