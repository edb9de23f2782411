"""Compile a tree model's ensemble to native code and prove it scores like scikit-learn.

Chosen by measurement (docs/runtimes.md, "Compiled trees"): on 1,000 OJ rows the twin's front
plus TL2cgen's quantized C took half the time of the twin for the random forest and 0.5-0.75
of it for hist gradient boosting. LightGBM's and XGBoost's trees stay with the twin.

Treelite reads the fitted estimator (a forest: from ``forest_treelite``, the twin's own
reading of it, with NaN left to the twin), TL2cgen writes it as C with double thresholds, and the
machine's C compiler (``$CC``, else ``gcc``, else ``cc``) builds that with ``mlship_predict``
(``_ENTRY``) into ``trees.so``. The twin cut at the ensemble's input becomes
``trees_input.onnx``, so the columns reach the trees through the preprocessing the twin's parity
already covers. The library is kept only when it passes the twin's contract on the holdout
(``compile.compare_probabilities`` / ``compare_values``); otherwise only the report is written,
and the model serves with the twin. Nothing here can fail training.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlship.config import Task
from mlship.errors import ModelError
from mlship.model import layout, trees
from mlship.model.parity import ParityReport, read_report
from mlship.model.trees import TreesReport
from mlship.scoring.results import label_indices
from mlship.training.compile import (
    PARITY_NAME,
    PROBA_TOLERANCE,
    VALUE_TOLERANCE,
    compare_probabilities,
    compare_values,
)
from mlship.training.forest_onnx import read_forest
from mlship.training.forest_treelite import treelite_model

FORESTS = frozenset({"RandomForestClassifier", "RandomForestRegressor"})
COMPILED = FORESTS | {"HistGradientBoostingClassifier", "HistGradientBoostingRegressor"}
FOREST_SMALL_BATCH = 2  # OJ's forest: the library 1.2x faster than the twin at 2 rows, 2.3x at 8
COMPILE_TIMEOUT = 900  # seconds; OJ's boosted trees build in ~2-9 s on 2 cores, its forest ~15
# -O1: a 300-tree forest's C built in 22 s, not 48 (-O2/-O3), and ran faster (docs/runtimes.md)
_FLAGS = ["-O1", "-std=c99", "-fPIC", "-shared"]
# Rows are row-major float64, NaN missing. TL2cgen's ``predict`` adds into ``result``, reads
# "missing" as the low 32 bits of a double being all ones, and (``quantize``) compares every
# present number with the thresholds only through its rank among them. So a present number
# with that bit pattern (0.5's float64 predecessor is one) is replaced by a neighbour of the
# same rank, which the trees cannot tell from it; one without such a neighbour is counted,
# and a caller that gets a count above 0 must not trust the batch. A forest's library is built
# with MLSHIP_NAN_TO_TWIN (its trees send NaN left: forest_treelite), so NaN is such a number;
# a matrix or output of another shape than the library's is refused the same way.
_ENTRY = r"""
#include "header.h"
#ifndef MLSHIP_NAN_TO_TWIN
#define MLSHIP_NAN_TO_TWIN 0
#endif

static int same_rank_neighbour(union Entry* cell, double value, int32_t feature) {
  const int rank = quantize(value, (unsigned)feature);
  const double near[2] = {nextafter(value, INFINITY), nextafter(value, -INFINITY)};
  for (int k = 0; k < 2; ++k) {
    cell->fvalue = near[k];
    if (cell->missing != -1 && quantize(near[k], (unsigned)feature) == rank) return 1;
  }
  return 0;
}

int64_t mlship_predict(const double* x, int64_t rows, int32_t cols, double* out, int32_t width) {
  if (cols != get_num_feature() || width != N_TARGET * MAX_N_CLASS) return -1;
  union Entry row[cols > 0 ? cols : 1];
  int64_t ambiguous = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const double* values = x + i * cols;
    for (int32_t j = 0; j < cols; ++j) {
      if (isnan(values[j])) {
        if (MLSHIP_NAN_TO_TWIN) return 1;
        row[j].missing = -1;
      } else {
        row[j].fvalue = values[j];
        if (row[j].missing == -1 && !same_rank_neighbour(&row[j], values[j], j)) ++ambiguous;
      }
    }
    double* result = out + i * width;
    for (int32_t k = 0; k < width; ++k) result[k] = 0.0;
    predict(row, 0, result);
  }
  return ambiguous;
}
"""
LIB_NAME, INPUT_NAME, REPORT_NAME = (
    Path(name).name for name in (layout.TREES_LIB, layout.TREES_INPUT, layout.TREES_REPORT)
)


def compile_trees(  # noqa: PLR0913 - the labelling rule and progress ride along, keyword-only
    model: Any,
    numeric: list[str],
    categorical: list[str],
    task: Task,
    check_rows: pd.DataFrame,
    out_dir: Path,
    *,
    threshold: tuple[int, float] | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> TreesReport | None:
    """Write the compiled trees beside ``out_dir/model.onnx``; None for an algorithm we leave
    to the twin. ``threshold`` labels a binary model as the twin's parity did."""
    if type(model[-1]).__name__ not in COMPILED or not _twin_passed(out_dir):
        return None  # the front is the twin's: without its parity there is nothing to build on
    say("compiling the trees to C (TL2cgen) and checking their parity on the holdout")
    try:
        report = _compile(model, (numeric, categorical), task, check_rows, out_dir, threshold)
    except Exception as exc:  # no compiler, a converter gap, a build error: keep the twin
        lines = str(exc).strip().splitlines()
        report = TreesReport(
            False, f"not compiled: {type(exc).__name__}: {lines[0] if lines else ''}"[:500]
        )
    if not report.passed:
        for name in (LIB_NAME, INPUT_NAME):
            (out_dir / name).unlink(missing_ok=True)
    report.write(out_dir / REPORT_NAME)
    say(f"compiled trees: {'passed' if report.passed else 'not used'} ({report.reason})")
    return report


def _twin_passed(out_dir: Path) -> bool:
    try:
        twin = read_report(ParityReport, out_dir / PARITY_NAME, "a parity report")
    except (ModelError, OSError):
        return False
    return twin is not None and twin.passed


def _compile(
    model: Any,
    roles: tuple[list[str], list[str]],
    task: Task,
    rows: pd.DataFrame,
    out_dir: Path,
    threshold: tuple[int, float] | None,
) -> TreesReport:
    import treelite

    from mlship.scoring.backends import OnnxBackend

    compiler = _compiler()
    _cut_twin(out_dir / "model.onnx", out_dir / INPUT_NAME)
    forest = type(model[-1]).__name__ in FORESTS
    if forest:  # a row with NaN in its matrix is the twin's: hint and check on the others
        matrix = OnnxBackend(out_dir / INPUT_NAME, *roles, 1).first(_columns(rows, *roles))
        present = ~np.isnan(matrix).any(axis=1)
        rows, matrix = rows[present], matrix[present]
        if rows.empty:
            raise RuntimeError("no holdout row without a missing value to check the trees on")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlship-trees-") as scratch:
        source = Path(scratch)
        if forest:  # the twin's own reading (forest_treelite), branch hints from the holdout
            read = treelite_model(read_forest(model[-1]), matrix.shape[1])
            _generate(read, source, hints=matrix)
        else:
            _generate(treelite.sklearn.import_model(model[-1]), source)  # type: ignore[no-untyped-call]
        defines = ["-DMLSHIP_NAN_TO_TWIN=1"] if forest else []
        command = [
            compiler, *_FLAGS, *defines, "-o", str(source / LIB_NAME), *_sources(source), "-lm",
        ]  # fmt: skip
        built = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT)
        if built.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {built.stderr.strip()[:300]}")
        shutil.copyfile(source / LIB_NAME, out_dir / LIB_NAME)
    facts: dict[str, Any] = {
        "platform": trees.this_platform(),
        "compiler": _compiler_version(compiler),
        "treelite": version("treelite"),
        "tl2cgen": version("tl2cgen"),
        "compile_seconds": round(time.perf_counter() - start, 3),
    }
    if forest:
        facts["small_batch"] = FOREST_SMALL_BATCH
    return _check(model, roles, task, rows, out_dir, threshold, facts)


def _check(  # noqa: PLR0913 - the facts of the build ride along
    model: Any,
    roles: tuple[list[str], list[str]],
    task: Task,
    rows: pd.DataFrame,
    out_dir: Path,
    threshold: tuple[int, float] | None,
    facts: dict[str, Any],
) -> TreesReport:
    """Score the holdout through the library as serving will, against scikit-learn."""
    from mlship.scoring.backends import OnnxBackend
    from mlship.scoring.compiled import CompiledTreesBackend

    numeric, categorical = roles
    twin = OnnxBackend(out_dir / "model.onnx", numeric, categorical, 1)
    front = OnnxBackend(out_dir / INPUT_NAME, numeric, categorical, 1)
    features = int(front.first(_columns(rows.head(1), numeric, categorical)).shape[1])
    classifier = task is Task.classification
    classes = len(model.classes_) if classifier else 1
    width = 1 if classes <= 2 else classes
    probe = TreesReport(True, "", features=features, width=width)
    backend = CompiledTreesBackend(out_dir / LIB_NAME, probe, front, twin, small=0)
    columns = _columns(rows, numeric, categorical)
    if backend.scores(columns) is None:  # the check must see the library alone
        raise RuntimeError("the holdout holds numbers the library reads as missing")
    if classifier:
        decide = threshold and partial(label_indices, positive=threshold[0], threshold=threshold[1])
        got = compare_probabilities(
            model.predict_proba(rows), backend.probabilities(columns), {}, decide
        )
    else:
        got = compare_values(model.predict(rows), backend.values(columns), VALUE_TOLERANCE, {})
    reason = got.reason.replace("p_onnx", "p_trees")
    return TreesReport(
        got.passed, reason, got.rows, got.max_abs_diff, got.label_mismatches,
        PROBA_TOLERANCE if classifier else VALUE_TOLERANCE, features, width, **facts,
    )  # fmt: skip


def _columns(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> dict[str, Any]:
    columns = {c: frame[c].to_numpy(np.float64) for c in numeric}
    return columns | {c: frame[c].to_numpy(object) for c in categorical}


def _cut_twin(twin: Path, out: Path) -> None:
    """The twin up to its one ``TreeEnsemble`` node's input: columns in, the trees' matrix out."""
    import onnx
    from onnx.utils import Extractor

    graph = onnx.load(str(twin))
    ensembles = [n for n in graph.graph.node if n.op_type == "TreeEnsemble"]
    if len(ensembles) != 1:
        raise RuntimeError(f"the twin has {len(ensembles)} TreeEnsemble nodes, not 1")
    matrix = ensembles[0].input[0]
    if matrix not in {v.name for v in graph.graph.value_info}:  # our graphs declare no shapes
        declared = onnx.helper.make_tensor_value_info(matrix, onnx.TensorProto.DOUBLE, None)
        graph.graph.value_info.append(declared)
    cut = Extractor(graph).extract_model([i.name for i in graph.graph.input], [matrix])
    onnx.save(cut, str(out))


def _generate(model: Any, target: Path, hints: np.ndarray | None = None) -> None:
    """TL2cgen's C for ``model`` and our entry point, in ``target``; ``hints``: rows whose
    counts mark each split's likelier branch (Treelite's importer records them itself)."""
    import tl2cgen

    params: dict[str, Any] = {"quantize": 1}
    with contextlib.redirect_stdout(io.StringIO()):  # its "parallel compilation disabled" note
        if hints is not None:
            counts = target / "hints.json"
            tl2cgen.annotate_branch(model, tl2cgen.DMatrix(hints), counts, nthread=1)
            params["annotate_in"] = str(counts)
        tl2cgen.generate_c_code(model, dirpath=str(target), params=params)
    (target / "mlship_entry.c").write_text(_ENTRY, encoding="utf-8")


def _sources(source: Path) -> list[str]:
    return sorted(str(p) for p in source.glob("*.c"))


def _compiler() -> str:
    for name in (os.environ.get("CC"), "gcc", "cc"):
        found = name and shutil.which(name)
        if found:
            return found
    raise RuntimeError("no C compiler ($CC, gcc or cc) on PATH")


def _compiler_version(compiler: str) -> str:
    shown = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30)
    return (shown.stdout.splitlines() or [compiler])[0].strip()
