"""Compile a fitted pipeline to ONNX and prove it scores like the original.

A scikit-learn pipeline spends ~2 ms of per-call overhead on one row, almost all of it in the
``ColumnTransformer``; the same graph in onnxruntime takes ~15 us. The compiled twin is kept
only with a parity report: on the holdout rows, probabilities within ``PROBA_TOLERANCE`` and
no label changes (regression: values within ``VALUE_TOLERANCE``, relative). Anything else is
recorded as a failed report and the model keeps serving with scikit-learn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from onnx import TensorProto
from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, StringTensorType

from mlship.config import Task
from mlship.model import layout
from mlship.model.parity import ParityReport
from mlship.scoring.results import label_indices
from mlship.training import forest_onnx, linear_onnx, tree_onnx
from mlship.training.calibration import onnx_unsupported
from mlship.training.onnx_threshold import apply_threshold, check_graph_labels
from mlship.training.pipeline import REGISTRY

# The contract (README "Two runtimes"): probabilities within 1e-6 and no label changes; values
# within 1e-9 relative where the model computes in float64. XGBoost itself computes in float32
# (inputs, thresholds, and a margin summed tree by tree in float32): a float64 twin follows
# the same branches but differs from that sum by its rounding, ~1e-6 relative over 200 trees,
# so its regression limit is 1e-5 relative.
PROBA_TOLERANCE = 1e-6
VALUE_TOLERANCE = 1e-9
FLOAT_VALUE_TOLERANCE = 1e-5
# skl2onnx 1.20 knows ai.onnx.ml up to 3; our TreeEnsemble needs 5, so the graph is declared
# at 3 while it is built and raised to 5 after (the other ml operators skl2onnx emits read
# the same under 5). IR version 10 is the first that carries opset 21 / ml 5.
OPSETS = {"": 21, "ai.onnx.ml": 3}
IR_VERSION = 10
# Written flat into ``out_dir``; MLflow logs them as the model's ``extra_files/``.
ONNX_NAME = Path(layout.ONNX).name
PARITY_NAME = Path(layout.PARITY).name


_registered = False


def _classifier_shapes(operator: Any) -> None:
    n = operator.inputs[0].get_first_dimension()
    classes = np.asarray(operator.raw_operator.classes_)
    label = Int64TensorType([n]) if classes.dtype.kind in "iu" else StringTensorType([n])
    operator.outputs[0].type = label
    operator.outputs[1].type = DoubleTensorType([n, len(classes)])


def _regressor_shapes(operator: Any) -> None:
    operator.outputs[0].type = DoubleTensorType([operator.inputs[0].get_first_dimension(), 1])


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """Median imputation in float64 (``Where(IsNaN(x), median, x)``); strings as skl2onnx."""
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer

    if not isinstance(operator.inputs[0].type, DoubleTensorType):
        convert_sklearn_imputer(scope, operator, container)
        return
    stats = np.asarray(operator.raw_operator.statistics_, dtype=np.float64)
    x = concatenate_variables(scope, operator.inputs, container)
    fill = scope.get_unique_variable_name("median")
    container.add_initializer(fill, TensorProto.DOUBLE, [1, len(stats)], stats.tolist())
    missing = scope.get_unique_variable_name("isnan")
    container.add_node("IsNaN", [x], [missing], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node(
        "Where", [missing, fill, x], [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Where"),
    )  # fmt: skip


def _register() -> None:
    """Our float64 converters for every tree ensemble and the numeric imputer, once."""
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from sklearn.impute import SimpleImputer

    update_registered_converter(
        SimpleImputer, "SklearnImputer", calculate_sklearn_imputer_output_shapes,
        _convert_imputer,
    )  # fmt: skip
    for cls in _forest_classes():
        classifier = cls.__name__.endswith("Classifier")
        update_registered_converter(
            cls,
            f"MlshipForest{cls.__name__}",
            _classifier_shapes if classifier else _regressor_shapes,
            forest_onnx.convert_forest,
            options={"zipmap": [False], "nocl": [False]} if classifier else None,
        )
    _registered = True


def _forest_classes() -> list[type]:
    """The tree estimator classes of the registry that are installed here."""
    import importlib

    found = []
    for spec in REGISTRY.values():
        for path in (spec.classifier, spec.regressor):
            module, _, name = (path or "").partition(":")
            if name not in forest_onnx.READERS:
                continue
            try:
                found.append(getattr(importlib.import_module(module), name))
            except ImportError:  # e.g. xgboost not installed: its models cannot be trained
                continue
    return found


def _convert(model: Any, numeric: list[str], categorical: list[str], task: Task) -> Any:
    for writer in (linear_onnx.build, tree_onnx.build):  # our pipelines, written directly
        lean = writer(model, numeric, categorical, task)
        if lean is not None:
            return lean
    from skl2onnx import convert_sklearn

    _register()
    inputs = [(c, DoubleTensorType([None, 1])) for c in numeric]
    inputs += [(c, StringTensorType([None, 1])) for c in categorical]
    options = {id(model[-1]): {"zipmap": False}} if task is Task.classification else None
    graph = convert_sklearn(model, initial_types=inputs, options=options, target_opset=OPSETS)
    _restore_input_names(graph, numeric + categorical)
    if any(n.op_type == "TreeEnsemble" for n in graph.graph.node):
        for opset in graph.opset_import:
            if opset.domain == "ai.onnx.ml":
                opset.version = forest_onnx.ML_OPSET
        graph.ir_version = max(graph.ir_version, IR_VERSION)
    return graph


def _restore_input_names(graph: Any, names: list[str]) -> None:
    """skl2onnx renames inputs it finds unusual (``od280/od315`` -> ``od280_od315``); every
    runtime feeds columns by their own name, so the graph takes those names back."""
    renamed = {
        given.name: name for given, name in zip(graph.graph.input, names, strict=True)
        if given.name != name
    }  # fmt: skip
    if not renamed:
        return
    for given in graph.graph.input:
        given.name = renamed.get(given.name, given.name)
    for node in graph.graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]


def _feeds(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> dict[str, Any]:
    feeds = {c: frame[c].to_numpy(np.float64).reshape(-1, 1) for c in numeric}
    feeds |= {c: frame[c].to_numpy(object).reshape(-1, 1) for c in categorical}
    return feeds


def value_tolerance(model: Any) -> float:
    """The regression contract for this model: float32 libraries get float32's limit."""
    estimator = model[-1]
    if forest_onnx.is_forest(estimator) and forest_onnx.read_forest(estimator).precision == "float":
        return FLOAT_VALUE_TOLERANCE
    return VALUE_TOLERANCE


def compile_onnx(  # noqa: PLR0913 - the labelling rule rides along, keyword-only
    model: Any,
    numeric: list[str],
    categorical: list[str],
    task: Task,
    check_rows: pd.DataFrame,
    out_dir: Path,
    *,
    threshold: tuple[int, float] | None = None,
) -> ParityReport:
    """Write ``model.onnx`` (if it converts) and ``onnx_parity.json`` into ``out_dir``.

    ``threshold`` (the positive class's column and the decision threshold of a binary model)
    is written into the graph's ``label`` output, and labels are compared at it; default argmax.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    versions: dict[str, Any] = {
        "onnxruntime": _version("onnxruntime"),
        "skl2onnx": _version("skl2onnx"),
    }
    rows = len(check_rows)
    start = time.perf_counter()
    try:
        blocked = onnx_unsupported(model)  # a calibrated model no converter matches
        if blocked:
            raise NotImplementedError(blocked)
        graph = _convert(model, numeric, categorical, task)
        if threshold is not None and task is Task.classification:
            apply_threshold(graph, list(model.classes_), *threshold)
        from mlship.scoring.backends import onnxruntime

        ort = onnxruntime()
        blob = graph.SerializeToString()
        session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
        outputs = session.run(None, _feeds(check_rows, numeric, categorical))
    except Exception as exc:  # every converter failure means the same: keep scikit-learn
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        reason = f"conversion unsupported: {type(exc).__name__}: {first}"
        report = ParityReport(False, reason[:500], rows, **versions)
        _write(report, out_dir)
        return report
    versions["convert_seconds"] = round(time.perf_counter() - start, 3)
    (out_dir / ONNX_NAME).write_bytes(blob)
    if task is Task.classification:
        reference = model.predict_proba(check_rows)
        decide = threshold and partial(label_indices, positive=threshold[0], threshold=threshold[1])
        report = compare_probabilities(reference, outputs[-1], versions, decide)
        report = check_graph_labels(report, model, reference, outputs[0], decide)
    else:
        tolerance = value_tolerance(model)
        report = compare_values(model.predict(check_rows), outputs[0], tolerance, versions)
    _write(report, out_dir)
    return report


def compare_probabilities(
    reference: Any,
    got: Any,
    extra: dict[str, Any],
    decide: Callable[[np.ndarray], np.ndarray] | None = None,
) -> ParityReport:
    """Probabilities within ``PROBA_TOLERANCE`` on every row, and the same label everywhere
    (labels by ``decide``, the model's decision threshold; argmax without one)."""
    want = np.asarray(reference, dtype=np.float64)
    have = np.asarray(got, dtype=np.float64)
    rows = len(want)
    if have.shape != want.shape:
        reason = f"probability shape {have.shape} != {want.shape}"
        return ParityReport(False, reason, rows, tolerance=PROBA_TOLERANCE, **extra)
    diff = float(np.abs(have - want).max()) if rows else 0.0
    labels = decide or (lambda p: p.argmax(axis=1))
    mismatches = int((labels(have) != labels(want)).sum())
    passed = diff <= PROBA_TOLERANCE and mismatches == 0
    reason = (
        "ok"
        if passed
        else f"max |p_onnx - p_sklearn| = {diff:.2e} (limit {PROBA_TOLERANCE:.0e}), "
        f"{mismatches} label change(s)"
    )
    return ParityReport(passed, reason, rows, diff, mismatches, tolerance=PROBA_TOLERANCE, **extra)


def compare_values(
    reference: Any, got: Any, tolerance: float, extra: dict[str, Any]
) -> ParityReport:
    """Values within ``tolerance``, relative (absolute below 1), on every row."""
    want = np.asarray(reference, dtype=np.float64).ravel()
    have = np.asarray(got, dtype=np.float64).ravel()
    if have.shape != want.shape:
        reason = f"value shape {have.shape} != {want.shape}"
        return ParityReport(False, reason, len(want), tolerance=tolerance, **extra)
    relative = np.abs(have - want) / np.maximum(np.abs(want), 1.0)
    worst = float(relative.max()) if len(want) else 0.0
    passed = bool(worst <= tolerance)  # NaN fails
    reason = "ok" if passed else f"max relative diff {worst:.2e} (limit {tolerance:.0e})"
    return ParityReport(passed, reason, len(want), worst, None, tolerance=tolerance, **extra)


def _write(report: ParityReport, out_dir: Path) -> None:
    report.write(out_dir / PARITY_NAME)


def _version(package: str) -> str | None:
    try:
        return version(package)
    except Exception:
        return None
