"""Runtimes that turn validated columns into probabilities or values.

``SklearnBackend`` runs the fitted pipeline (every model); ``OnnxBackend`` runs the compiled
twin in onnxruntime (~15 us a row instead of ~2 ms) when its parity report passed. Tree
ensembles compile to float64 ``TreeEnsemble`` graphs (docs/runtimes.md), which need nothing
beyond onnxruntime to serve; a model that also carries compiled trees (``model.trees``) scores
its trees with them (``compiled.CompiledTreesBackend``) where they were built for this machine.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mlship.errors import ModelError
from mlship.model import layout, trees
from mlship.model.saved import Runtime, SavedModel
from mlship.scoring.columns import Columns
from mlship.scoring.compiled import CompiledTreesBackend

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


class Backend(Protocol):
    """What a runtime must do with validated columns."""

    name: str

    def probabilities(self, columns: Columns) -> np.ndarray: ...

    def values(self, columns: Columns) -> np.ndarray: ...


class SklearnBackend:
    """The fitted scikit-learn pipeline; it selects columns by name, so it gets a DataFrame."""

    name = "sklearn"

    def __init__(self, estimator: Any, column_names: list[str]) -> None:
        self.estimator = estimator
        self.column_names = column_names

    def _frame(self, columns: Columns) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(columns, columns=self.column_names, copy=False)

    def probabilities(self, columns: Columns) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(self._frame(columns)), dtype=np.float64)

    def values(self, columns: Columns) -> np.ndarray:
        return np.asarray(self.estimator.predict(self._frame(columns)), dtype=np.float64)


# Numeric inputs are fed in the precision the graph declares: float64 for twins compiled by
# mlship 0.2 (exact tree thresholds), float32 for older ones.
_NUMERIC_DTYPES = {"tensor(double)": np.float64, "tensor(float)": np.float32}


def onnxruntime() -> Any:
    """onnxruntime, imported with its usage telemetry off unless the environment says otherwise.

    Its Linux wheels (1.32 here) write a device id under ``~/.cache/Microsoft`` and send usage
    events to Microsoft's collector; a scoring service makes no call its operator did not ask
    for (and on a read-only root it warned at every start). ``ORT_DISABLE_TELEMETRY`` counts
    only when set before the runtime's environment exists, that is before its first use.
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort

    return ort


class OnnxBackend:
    """The compiled graph in onnxruntime: one input per column, shaped (rows, 1)."""

    name = "onnx"

    def __init__(self, path: Path, numeric: list[str], categorical: list[str], threads: int):
        ort = onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.numeric = numeric
        self.categorical = categorical
        declared = {i.name: i.type for i in self.session.get_inputs()}
        self._dtypes = {c: _NUMERIC_DTYPES.get(declared.get(c, ""), np.float32) for c in numeric}
        outputs = [o.name for o in self.session.get_outputs()]
        self._proba = "probabilities" if "probabilities" in outputs else outputs[-1]
        self._value = outputs[0]

    def _feeds(self, columns: Columns) -> dict[str, np.ndarray]:
        feeds = {
            c: columns[c].astype(self._dtypes[c], copy=False).reshape(-1, 1) for c in self.numeric
        }
        feeds |= {c: columns[c].reshape(-1, 1) for c in self.categorical}
        return feeds

    def first(self, columns: Columns) -> np.ndarray:
        """The graph's first output as computed (the trees' matrix, for a cut twin)."""
        return np.asarray(self.session.run([self._value], self._feeds(columns))[0])

    def probabilities(self, columns: Columns) -> np.ndarray:
        out = self.session.run([self._proba], self._feeds(columns))[0]
        return np.asarray(out, dtype=np.float64)

    def values(self, columns: Columns) -> np.ndarray:
        out = self.session.run([self._value], self._feeds(columns))[0]
        return np.asarray(out, dtype=np.float64).ravel()


def _compiled_trees(saved: SavedModel, twin: OnnxBackend, threads: int) -> Backend | None:
    """The compiled trees in front of ``twin`` when they passed parity and run here, else None.

    They walk every row on one thread; with ``threads`` above 1 onnxruntime's ensemble, which
    splits the rows over its threads, is the faster of the two.
    """
    if threads != 1 or not saved.info.manifest_sha256:  # native code only from a verified dir
        return None
    try:
        report = trees.read_trees(saved.root)
        if report is None or not report.passed:
            return None
        why = trees.mismatch(report.platform)
        if why is None:
            front = OnnxBackend(saved.root / layout.TREES_INPUT, twin.numeric, twin.categorical, 1)
            return CompiledTreesBackend(saved.root / layout.TREES_LIB, report, front, twin)
    except Exception as exc:  # an optional speed-up: any failure keeps the twin
        why = f"{type(exc).__name__}: {exc}"
    log.warning("compiled trees not used (%s): scoring with onnxruntime", why)
    return None


def load_backend(
    saved: SavedModel, runtime: Runtime, threads: int, compiled_trees: bool = True
) -> Backend:
    """The backend ``runtime`` resolves to for ``saved`` (``auto``: ONNX when ready).

    ``compiled_trees`` lets the ONNX runtime score a tree model's trees with their compiled
    library when it was built for this machine (``_compiled_trees``).
    """
    chosen = saved.serving_runtime(runtime)
    if chosen == "onnx":
        numeric = [c.name for c in saved.columns if c.kind == "numeric"]
        categorical = [c.name for c in saved.columns if c.kind == "categorical"]
        try:
            twin = OnnxBackend(saved.root / layout.ONNX, numeric, categorical, threads)
            fast = _compiled_trees(saved, twin, threads) if compiled_trees else None
            return fast or twin
        except ImportError:
            if runtime == "onnx":
                raise ModelError("runtime onnx: onnxruntime is not installed") from None
    try:
        estimator = saved.load_estimator()
    except ImportError as exc:
        needs = (getattr(exc, "name", None) or "sklearn").split(".")[0]
        why = "" if runtime == "sklearn" else " and it has no ONNX twin that passed parity"
        raise ModelError(
            f"runtime sklearn: cannot load {saved.root}: the model needs the Python package "
            f"{needs!r}, which this install lacks{why}"
        ) from None
    return SklearnBackend(estimator, [c.name for c in saved.columns])
