"""A tree model's compiled trees (``model.trees``) as a backend, through ``ctypes``.

The request's columns go through the twin's front (``trees_input.onnx`` in onnxruntime: the
numbers and one-hot blocks the trees read), then through one call into the library, which walks
every row and writes its probabilities or value; ctypes releases the GIL for that call. The
library is TL2cgen's code plus ``mlship_predict`` (``training.compile_trees``), which reads a
row-major float64 matrix with NaN as the missing value.

TL2cgen's code tests "missing" as the low 32 bits of a double being all ones. ``mlship_predict``
scores a present number with that pattern as a neighbour of the same rank among the thresholds
(all the trees compare), and counts any it cannot; a batch with one is scored by the full twin
instead, so no row is ever scored on the wrong branch.

A batch under the report's ``small_batch`` rows goes to the twin: its one onnxruntime call
costs less than the front's call plus the library's. For OJ's boosted trees on one thread: 56
against 92 us for one row, even near 48 rows, the library 1.3x faster from 1,000; for its
forest the library is ahead from 2 rows (docs/runtimes.md).
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Protocol

import numpy as np

from mlship.errors import ModelError
from mlship.model.trees import TreesReport
from mlship.scoring.columns import Columns


class Twin(Protocol):
    """What this backend needs of an ONNX backend (``backends.OnnxBackend``)."""

    def first(self, columns: Columns) -> np.ndarray: ...

    def probabilities(self, columns: Columns) -> np.ndarray: ...

    def values(self, columns: Columns) -> np.ndarray: ...


class CompiledTreesBackend:
    """The twin's front, then the compiled trees; the full twin for a small or ambiguous batch.

    ``small`` is the row count from which the library is used (default: the report's; 0:
    always, as the training check does, which must see the library alone).
    """

    name = "compiled-trees"

    def __init__(
        self, library: Path, report: TreesReport, front: Twin, twin: Twin, small: int | None = None
    ) -> None:
        try:
            lib = ctypes.CDLL(str(library))
            self._predict = lib.mlship_predict
            lib.get_num_feature.restype = ctypes.c_int32
            features = lib.get_num_feature()
        except (OSError, AttributeError) as exc:
            raise ModelError(f"{library}: cannot load the compiled trees ({exc})") from None
        self._predict.restype = ctypes.c_int64
        self._predict.argtypes = [
            ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p, ctypes.c_int32,
        ]  # fmt: skip
        if features != report.features or report.width < 1:
            raise ModelError(
                f"{library}: reads {features} features, its report says {report.features}"
            )
        self.width = report.width
        self.front, self.twin = front, twin
        self.small = report.small_batch if small is None else small
        self._library = lib  # the handle keeps the library mapped

    def scores(self, columns: Columns) -> np.ndarray | None:
        """The library's output for these rows, or None when a number is ambiguous to it (or
        NaN, for a forest's library; or the matrix is not the shape it reads)."""
        matrix = np.ascontiguousarray(self.front.first(columns), dtype=np.float64)
        rows, features = matrix.shape
        out = np.empty((rows, self.width), dtype=np.float64)
        ambiguous = self._predict(matrix.ctypes.data, rows, features, out.ctypes.data, self.width)
        return None if ambiguous else out

    def _output(self, columns: Columns) -> np.ndarray | None:
        """The library's output, or None where the twin should answer."""
        rows = len(next(iter(columns.values()), ()))
        return None if rows < self.small else self.scores(columns)

    def probabilities(self, columns: Columns) -> np.ndarray:
        out = self._output(columns)
        if out is None:
            return self.twin.probabilities(columns)
        if self.width == 1:  # a binary model writes P(second class); scikit-learn's 1 - p first
            return np.column_stack([1.0 - out[:, 0], out[:, 0]])
        return out

    def values(self, columns: Columns) -> np.ndarray:
        out = self._output(columns)
        return self.twin.values(columns) if out is None else out.ravel()
