"""Columns of the training table that the model does not use: the target and dropped ones.

A row of the training table must score as it is, so these are ignored at scoring time rather
than rejected as unknown. They come from the model's metadata (``target``) and the resolved
training config saved beside it (``config.yaml``: ``data.features.drop``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlship.model import layout


def unused_columns(root: Path, target: str) -> frozenset[str]:
    names = {target} if target else set()
    config = root / layout.CONFIG
    if config.is_file():
        try:
            loaded: Any = yaml.safe_load(config.read_text(encoding="utf-8"))
            dropped = loaded["data"]["features"]["drop"] or []
        except (yaml.YAMLError, UnicodeDecodeError, TypeError, KeyError):
            dropped = []
        names |= {str(name) for name in dropped}
    return frozenset(names)
