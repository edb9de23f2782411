"""The compiled twin's parity report: written at training, read wherever a runtime is chosen."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from mlship.errors import ModelError
from mlship.model import layout

R = TypeVar("R")


@dataclass(frozen=True)
class ParityReport:
    """How the compiled twin compared with scikit-learn on the holdout rows."""

    passed: bool
    reason: str
    rows: int
    max_abs_diff: float | None = None
    label_mismatches: int | None = None
    convert_seconds: float | None = None
    tolerance: float | None = None  # the limit max_abs_diff was held to (absent before 0.2)
    onnxruntime: str | None = None
    skl2onnx: str | None = None

    def write(self, path: Path) -> None:
        """Write the report as JSON (training writes it beside ``model.onnx``)."""
        write_report(self, path)


def read_parity(model_dir: Path) -> ParityReport | None:
    """The report beside ``model.onnx``, or None when the model has none."""
    return read_report(ParityReport, model_dir / layout.PARITY, "a parity report")


def write_report(report: Any, path: Path) -> None:
    """A report dataclass as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")


def read_report(kind: type[R], path: Path, what: str) -> R | None:
    """A report written by ``write_report``, or None when there is none; fields added by a later
    version are ignored, a file that is not such a report is a ``ModelError``."""
    if not path.is_file():
        return None
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(kind)}  # type: ignore[arg-type]
        return kind(**{k: v for k, v in raw.items() if k in known})
    except (ValueError, TypeError, AttributeError) as exc:
        raise ModelError(f"{path}: not {what} ({exc})") from None
