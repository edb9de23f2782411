"""In-process runtimes per algorithm: scikit-learn, our float64 ONNX twin, the old float32 one.

Hist gradient boosting and random forests also get their compiled trees
(``training.compile_trees``: the twin's front, then the trees in C), the backend ``--runtime
auto`` serves them with on this machine (batches under the report's ``small_batch`` rows go
to the twin).

Trains each OJ model (configs/base.yaml parameters), compiles it, and times the serving
backends (``mlship.scoring.backends``) on validated columns, as the service calls them:
1 row and 1,000 rows, ``--rounds`` rounds of ``--seconds`` each, median per call. The third
runtime is the float32 graph skl2onnx/onnxmltools emit by default (random forest, LightGBM;
HistGradientBoosting and XGBoost have none), shown for its speed and its parity miss.

    uv run python benchmarks/bench_runtimes.py            # all algorithms, ~2 minutes
    uv run python benchmarks/bench_runtimes.py --algorithms lightgbm --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlship.config import load_settings
from mlship.scoring.backends import OnnxBackend, SklearnBackend
from mlship.scoring.compiled import CompiledTreesBackend
from mlship.training.compile import compile_onnx
from mlship.training.compile_trees import compile_trees
from mlship.training.data import prepare, split
from mlship.training.pipeline import build_pipeline

ROOT = Path(__file__).resolve().parents[1]
ALGORITHMS = ["logistic_regression", "random_forest", "hist_gradient_boosting", "lightgbm"]
ALGORITHMS += ["xgboost"]


def fitted(name: str) -> tuple[Any, Any, pd.DataFrame]:
    data = ROOT / "data" / "oj.csv"
    settings = load_settings(
        ROOT / "configs" / "base.yaml", None, [f"model.name={name}", f"data.uri={data}"],
        ROOT / "configs" / "env",
    )  # fmt: skip
    dataset = prepare(pd.read_csv(data), settings)
    parts = split(dataset, settings.split, settings.task)
    model = build_pipeline(dataset.numeric, dataset.categorical, settings.model, settings.task, 42)
    model.fit(parts.x_train, parts.y_train)
    return model, dataset, dataset.features


def float32_graph(model: Any, numeric: list[str], categorical: list[str]) -> bytes | None:
    """The float32 graph skl2onnx (LightGBM: onnxmltools) emits by default, if it converts."""
    from skl2onnx import convert_sklearn, update_registered_converter
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    if type(model[-1]).__name__ == "LGBMClassifier":
        from lightgbm import LGBMClassifier
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(
            LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes,
            convert_lightgbm, options={"nocl": [True, False], "zipmap": [True, False]},
        )  # fmt: skip
    inputs = [(c, FloatTensorType([None, 1])) for c in numeric]
    inputs += [(c, StringTensorType([None, 1])) for c in categorical]
    try:
        graph = convert_sklearn(
            model, initial_types=inputs, options={id(model[-1]): {"zipmap": False}},
            target_opset={"": 17, "ai.onnx.ml": 3},
        )  # fmt: skip
    except Exception:  # no float32 converter: nothing to compare
        return None
    return bytes(graph.SerializeToString())


def columns_of(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> dict:
    cols = {c: frame[c].to_numpy(np.float64) for c in numeric}
    return cols | {c: frame[c].to_numpy(object) for c in categorical}


def per_call(fn: Callable[[], Any], seconds: float, rounds: int) -> float:
    """Median over ``rounds`` of the mean seconds per call within ``seconds``."""
    fn()
    results = []
    for _ in range(rounds):
        calls, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            fn()
            calls += 1
        results.append(elapsed / calls)
    return statistics.median(results)


def runtimes(fit: tuple[Any, ...], work: Path) -> tuple[dict[str, Any], dict[Any, dict]]:
    """The backends to compare for one model, and the rows to time (1, 1,000) and check (all)."""
    model, ds, features, old = fit
    compile_onnx(model, ds.numeric, ds.categorical, task_of(model), features.head(200), work)
    backends: dict[str, Any] = {
        "sklearn": SklearnBackend(model, list(features.columns)),
        "onnx float64 (mlship)": OnnxBackend(work / "model.onnx", ds.numeric, ds.categorical, 1),
    }
    report = compile_trees(model, ds.numeric, ds.categorical, task_of(model), features, work)
    if report is not None and report.passed:
        front = OnnxBackend(work / "trees_input.onnx", ds.numeric, ds.categorical, 1)
        backends["compiled trees (mlship)"] = CompiledTreesBackend(
            work / "trees.so", report, front, backends["onnx float64 (mlship)"]
        )
    if old is not None:
        (work / "float32.onnx").write_bytes(old)
        backends["onnx float32 (skl2onnx)"] = OnnxBackend(
            work / "float32.onnx", ds.numeric, ds.categorical, 1
        )
    rows: dict[Any, dict] = {
        n: columns_of(features.sample(n, replace=True, random_state=0), ds.numeric, ds.categorical)
        for n in (1, 1000)
    }
    rows["all"] = columns_of(features, ds.numeric, ds.categorical)
    return backends, rows


def task_of(model: Any) -> Any:
    from mlship.config import Task

    return Task.classification if hasattr(model[-1], "classes_") else Task.regression


def parity(reference: Any, backend: Any, rows: dict) -> str:
    """Max |p - p_sklearn| and label changes over every OJ row."""
    if backend is reference:
        return "-"
    want, got = reference.probabilities(rows), backend.probabilities(rows)
    labels = int((want.argmax(axis=1) != got.argmax(axis=1)).sum())
    return f"{float(np.abs(want - got).max()):.1e} ({labels} label changes)"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    print("| algorithm | runtime | 1 row (us) | 1,000 rows (ms) | max abs dp, all 1,070 OJ rows |")
    print("|---|---|---:|---:|---:|")
    # Every float32 graph first: compile_onnx replaces skl2onnx's tree converters in-process.
    fits = {}
    for name in args.algorithms.split(","):
        model, ds, features = fitted(name)
        fits[name] = (model, ds, features, float32_graph(model, ds.numeric, ds.categorical))
    for name, fit in fits.items():
        with tempfile.TemporaryDirectory(prefix="mlship-bench-") as tmp:
            backends, rows = runtimes(fit, Path(tmp))
            for label, backend in backends.items():
                timings = [
                    per_call(partial(backend.probabilities, rows[n]), args.seconds, args.rounds)
                    for n in (1, 1000)
                ]
                diff = parity(backends["sklearn"], backend, rows["all"])
                print(
                    f"| {name} | {label} | {timings[0] * 1e6:,.0f} | {timings[1] * 1e3:,.2f} "
                    f"| {diff} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
