"""Write mlship's own files into a model dir, stamped with the format and mlship versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlship import __version__
from mlship.model import layout


def write_identity(
    model_dir: Path,
    *,
    name: str,
    version: str,
    run_id: str,
    tracking_uri: str,
    metrics: dict[str, float],
) -> dict[str, Any]:
    """``mlship.json`` and ``metrics.json`` for a model exported from the registry."""
    info = {
        "format_version": layout.FORMAT_VERSION,
        "mlship_version": __version__,
        "name": name,
        "version": version,
        "run_id": run_id,
        "tracking_uri": tracking_uri,
        "metrics": metrics,
    }
    _write_json(model_dir / layout.METRICS, metrics)
    _write_json(model_dir / layout.INFO, info)
    return info


def _write_json(path: Path, content: Any) -> None:
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
