"""What would silently make a bad model: refused (a CSV cut off mid-row, a feature with no
value at all) or warned about, one line each (constant or mostly missing features, rare classes).
"""

from __future__ import annotations

import csv
from typing import Any

import pandas as pd

from mlship.errors import DataError

# Warn (train anyway) when a feature is missing in more than this share of rows, or a class
# is rarer than this share of rows.
MOSTLY_MISSING = 0.5
RARE_CLASS = 0.01
# How much of a CSV's end is kept to find its last line.
TAIL_BYTES = 1 << 20


def last_line(uri: str, options: dict[str, Any] | None) -> tuple[str, int] | None:
    """The last non-blank line of a text file and its line number (None: too long to tell).

    Read again through fsspec (decompressed as pandas does), counting newlines on the way.
    """
    import fsspec

    kwargs = dict(options or {})
    if uri.lower().startswith(("http://", "https://")) and kwargs:
        kwargs = {"headers": kwargs}  # pandas sends storage_options for HTTP(S) as headers
    newlines, tail = 0, b""
    with fsspec.open(uri, "rb", compression="infer", **kwargs) as handle:
        while chunk := handle.read(TAIL_BYTES):
            newlines += chunk.count(b"\n")
            tail = (tail + chunk)[-TAIL_BYTES:]
    lines = tail.split(b"\n")
    for back, line in enumerate(reversed(lines)):
        if line.strip():
            if back == len(lines) - 1 and len(tail) == TAIL_BYTES:
                return None  # the line began before the kept tail
            return line.rstrip(b"\r").decode("utf-8", "replace"), newlines - back + 1
    return None


def check_last_row(uri: str, last: tuple[str, int] | None, sep: str, columns: int) -> None:
    """Refuse a CSV whose last row is short: pandas pads it with nulls, a cut-off file trains.

    A last line with an odd number of quotes ends a multi-line field (or pandas has already
    refused an unclosed one); its fields cannot be counted from the line alone.
    """
    if last is None or last[0].count('"') % 2:
        return
    text, number = last
    fields = len(next(csv.reader([text], delimiter=sep)))
    if fields < columns:
        raise DataError(
            f"data.uri {uri!r}: line {number} has {fields} of {columns} fields; the file looks "
            "cut off mid-row"
        )


def check_filled(frame: pd.DataFrame, names: list[str]) -> None:
    """A feature with no value at all teaches the model nothing and hides a broken extract."""
    for name in names:
        if frame[name].isna().all():
            raise DataError(
                f"feature {name!r}: every value is missing ({len(frame):,} rows); fix the data "
                "or list it under data.features.drop"
            )


def feature_warnings(frame: pd.DataFrame, names: list[str]) -> list[str]:
    """One line per feature that is constant or mostly missing (legal, but likely a mistake)."""
    found = []
    for name in names:
        column = frame[name]
        present = column.dropna()
        if present.nunique() == 1:
            where = "every row" if len(present) == len(column) else "every row that has one"
            found.append(
                f"feature {name!r} is constant ({present.iloc[0]} in {where}); it cannot help "
                "the model"
            )
        missing = len(column) - len(present)
        if missing > MOSTLY_MISSING * len(column):
            found.append(
                f"feature {name!r}: {_percent(missing, len(column))} of values are missing "
                f"({missing:,} of {len(column):,} rows)"
            )
    return found


def _percent(part: int, whole: int) -> str:
    """A share rounded down to 0.1%, so 1,069 of 1,070 is not "100%" and 1 in 10^5 not "0%"."""
    tenths = part * 1000 // whole
    return "<0.1%" if part and not tenths else f"{tenths / 10:g}%"


def class_warnings(target: pd.Series, classes: list[str]) -> list[str]:
    """One line per class rarer than ``RARE_CLASS`` of the rows (classification only)."""
    counts = target.value_counts()
    found = []
    for label in classes:
        if counts[label] < RARE_CLASS * len(target):
            found.append(
                f"class {label!r} is {_percent(counts[label], len(target))} of rows "
                f"({counts[label]:,} of {len(target):,}); "
                "the model may rarely or never predict it"
            )
    return found
