"""Compiled trees: a tree model's ensemble as native code, and where that code may run.

For the algorithms ``training.compile_trees`` compiles (hist gradient boosting and random
forests, where the twin's front plus the compiled trees measured 1.3x and 1.9x faster than
the twin at 1,000 rows), a model dir carries, beside the ONNX twin:

- ``trees.so``: the trees as C (TL2cgen's code, double thresholds) plus mlship's batch entry
  point, built with the training machine's C compiler;
- ``trees_input.onnx``: the twin cut at the ensemble's input, which turns request columns into
  the matrix the trees read (so the preprocessing stays the one the twin's parity covers);
- ``trees.json``: this report: parity against scikit-learn on the holdout, and the platform the
  library was built for.

A shared library runs only on the operating system, architecture and C library it was built
for (and a glibc at least as new). ``mismatch`` says why this machine is not one of those;
the service then scores with the twin, which runs anywhere onnxruntime does. The manifest
covers these files like every other, so the library is verified before it is loaded.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path

from mlship.model import layout
from mlship.model.parity import read_report, write_report

SMALL_BATCH = 48  # hist gradient boosting's; training writes each model's in its report


@dataclass(frozen=True)
class TreesReport:
    """How the compiled trees compared with scikit-learn, and what they were built for."""

    passed: bool
    reason: str
    rows: int = 0
    max_abs_diff: float | None = None
    label_mismatches: int | None = None
    tolerance: float | None = None
    features: int = 0  # columns of the matrix the trees read
    width: int = 0  # values the library writes per row (1 for binary and regression)
    small_batch: int = SMALL_BATCH  # fewer rows than this go to the twin, faster there
    platform: dict[str, str] = field(default_factory=dict)
    compiler: str | None = None
    treelite: str | None = None
    tl2cgen: str | None = None
    compile_seconds: float | None = None

    def write(self, path: Path) -> None:
        write_report(self, path)


def read_trees(model_dir: Path) -> TreesReport | None:
    """The compiled trees' report, or None for a model without them."""
    return read_report(TreesReport, model_dir / layout.TREES_REPORT, "a compiled-trees report")


def this_platform() -> dict[str, str]:
    """The facts a shared library depends on: OS, architecture, C library and its version."""
    libc, version = platform.libc_ver()
    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "libc": libc,
        "libc_version": version,
    }


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return ()


def mismatch(built: dict[str, str], here: dict[str, str] | None = None) -> str | None:
    """Why a library built on ``built`` cannot be loaded here, or None when it can."""
    here = here or this_platform()
    for key in ("system", "machine", "libc"):
        if built.get(key) != here.get(key):
            return f"built for {key} {built.get(key)!r}, this machine has {here.get(key)!r}"
    need, have = _version(built.get("libc_version", "")), _version(here.get("libc_version", ""))
    if not need or not have or have < need:
        return (
            f"built against {built.get('libc')} {built.get('libc_version')!r}, this machine has "
            f"{here.get('libc_version')!r}"
        )
    return None
