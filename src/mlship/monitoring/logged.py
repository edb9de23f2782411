"""Reading the service's CSV request log back (``mlship.serving.request_csv`` writes it).

A CSV file does not say which columns are categories: ``StoreID`` is written ``1`` and must
stay the category ``"1"`` (a CSV reader would make it the integer 1, and ``"007"`` would
become 7), or it would bin differently from the same rows logged as Parquet. The model's
reference profile says, so every cell is read as text (an empty cell is missing, as Parquet's
null) and only the profile's numeric features and ``proba_*`` become float64; their text is
the round-trip repr, so the numbers are exactly those logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlship.errors import DataError
from mlship.scoring.columns import MISSING_CATEGORY
from mlship.scoring.results import PROBA_PREFIX

if TYPE_CHECKING:
    from mlship.model.profile import Profile


def is_csv_log(folder: str) -> bool:
    """Whether ``folder`` is a local folder holding CSV request log files."""
    path = Path(folder)
    return "://" not in folder and path.is_dir() and any(_visible(path, "*.csv"))


def _visible(folder: Path, pattern: str) -> list[Path]:
    """The finished files (a hidden name is a file still being written)."""
    return sorted(p for p in folder.glob(pattern) if not p.name.startswith((".", "_")))


def read_logged(folder: str, profile: Profile) -> pd.DataFrame:
    """Every logged row in ``folder`` (its CSV files, and its Parquet files if any)."""
    numeric = {n for n, f in profile.features.items() if f.kind == "numeric"}
    numeric |= {f"feature_{n}" for n in numeric}  # a feature logged under a prefixed name
    frames = [_read_csv(p, numeric) for p in _visible(Path(folder), "*.csv")]
    frames += [pd.read_parquet(p) for p in _visible(Path(folder), "*.parquet")]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _read_csv(path: Path, numeric: set[str]) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[MISSING_CATEGORY])
    for name in frame.columns:
        if name in numeric or name.startswith(PROBA_PREFIX):
            try:
                frame[name] = frame[name].astype(np.float64)  # float() of repr text: exact
            except ValueError as exc:  # not a file of ours, or edited by hand
                raise DataError(f"data {path.name}: column {name!r}: {exc}") from None
    return frame
