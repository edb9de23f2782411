"""Compile a fitted pipeline to ONNX and prove it scores like the original.

A scikit-learn pipeline spends ~2 ms of per-call overhead on one row, almost all of it in the
``ColumnTransformer``; the same graph in onnxruntime takes ~15 us. The compiled twin is kept
only with a parity report: on the holdout rows, probabilities within ``PROBA_TOLERANCE`` and
no label changes (regression: values within ``VALUE_TOLERANCE``, relative). Anything else is
recorded as a failed report and the model keeps serving with scikit-learn.
"""

from __future__ import annotations

import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlship.config import Task
from mlship.model import layout
from mlship.model.parity import ParityReport

PROBA_TOLERANCE = 1e-5
VALUE_TOLERANCE = 1e-4
# Written flat into ``out_dir``; MLflow logs them as the model's ``extra_files/``.
ONNX_NAME = Path(layout.ONNX).name
PARITY_NAME = Path(layout.PARITY).name


_registered = False


def _register_lightgbm() -> None:
    """Teach skl2onnx the LightGBM estimators (their converters live in onnxmltools)."""
    global _registered
    if _registered:
        return
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        LGBMRegressor,
        "LightGbmLGBMRegressor",
        calculate_linear_regressor_output_shapes,
        convert_lightgbm,
        options={"split": None},
    )
    _registered = True


def _convert(model: Any, numeric: list[str], categorical: list[str], task: Task) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    _register_lightgbm()
    inputs = [(c, FloatTensorType([None, 1])) for c in numeric]
    inputs += [(c, StringTensorType([None, 1])) for c in categorical]
    options = {id(model[-1]): {"zipmap": False}} if task is Task.classification else None
    return convert_sklearn(
        model,
        initial_types=inputs,
        options=options,
        target_opset={"": 17, "ai.onnx.ml": 3},
    )


def _feeds(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> dict[str, Any]:
    feeds = {c: frame[c].to_numpy(np.float32).reshape(-1, 1) for c in numeric}
    feeds |= {c: frame[c].to_numpy(object).reshape(-1, 1) for c in categorical}
    return feeds


def compile_onnx(
    model: Any,
    numeric: list[str],
    categorical: list[str],
    task: Task,
    check_rows: pd.DataFrame,
    out_dir: Path,
) -> ParityReport:
    """Write ``model.onnx`` (if it converts) and ``onnx_parity.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    versions: dict[str, Any] = {
        "onnxruntime": _version("onnxruntime"),
        "skl2onnx": _version("skl2onnx"),
    }
    rows = len(check_rows)
    start = time.perf_counter()
    try:
        graph = _convert(model, numeric, categorical, task)
        import onnxruntime as ort

        blob = graph.SerializeToString()
        session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
        outputs = session.run(None, _feeds(check_rows, numeric, categorical))
    except Exception as exc:  # every converter failure means the same: keep scikit-learn
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        reason = f"conversion unsupported: {type(exc).__name__}: {first}"
        report = ParityReport(False, reason[:500], rows, **versions)
        _write(report, out_dir)
        return report
    seconds = round(time.perf_counter() - start, 3)
    (out_dir / ONNX_NAME).write_bytes(blob)
    if task is Task.classification:
        reference = np.asarray(model.predict_proba(check_rows), dtype=np.float64)
        got = np.asarray(outputs[-1], dtype=np.float64)
        if got.shape != reference.shape:
            report = ParityReport(
                False, f"probability shape {got.shape} != {reference.shape}", rows, **versions
            )
            _write(report, out_dir)
            return report
        diff = float(np.abs(got - reference).max())
        mismatches = int((got.argmax(axis=1) != reference.argmax(axis=1)).sum())
        passed = diff <= PROBA_TOLERANCE and mismatches == 0
        reason = (
            "ok"
            if passed
            else f"max |p_onnx - p_sklearn| = {diff:.2e} (limit {PROBA_TOLERANCE:.0e}), "
            f"{mismatches} label change(s)"
        )
        report = ParityReport(passed, reason, rows, diff, mismatches, seconds, **versions)
    else:
        reference = np.asarray(model.predict(check_rows), dtype=np.float64)
        got = np.asarray(outputs[0], dtype=np.float64).ravel()
        relative = np.abs(got - reference) / np.maximum(np.abs(reference), 1.0)
        worst = float(relative.max())
        passed = worst <= VALUE_TOLERANCE
        reason = "ok" if passed else f"max relative diff {worst:.2e} (limit {VALUE_TOLERANCE:.0e})"
        report = ParityReport(passed, reason, rows, worst, None, seconds, **versions)
    _write(report, out_dir)
    return report


def _write(report: ParityReport, out_dir: Path) -> None:
    report.write(out_dir / PARITY_NAME)


def _version(package: str) -> str | None:
    try:
        return version(package)
    except Exception:
        return None
