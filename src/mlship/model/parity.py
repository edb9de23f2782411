"""The compiled twin's parity report: written at training, read wherever a runtime is chosen."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from mlship.errors import ModelError
from mlship.model import layout


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
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


def read_parity(model_dir: Path) -> ParityReport | None:
    """The report beside ``model.onnx``, or None when the model has none."""
    path = model_dir / layout.PARITY
    if not path.is_file():
        return None
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(ParityReport)}
        return ParityReport(**{k: v for k, v in raw.items() if k in known})
    except (ValueError, TypeError, AttributeError) as exc:
        raise ModelError(f"{path}: not a parity report ({exc})") from None
