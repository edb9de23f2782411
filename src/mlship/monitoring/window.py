"""The counting behind the live drift gauges (``mlship.monitoring.live``): slots and the ring.

Each distribution watched (a feature, the predicted labels or values, a class's probability)
owns a run of slots in one flat vector: one per bin of the reference profile, then one for
missing values. A batch of rows becomes one slot index per row and distribution (``bin_of``: a
binary search of the profile's edges or category names, no loop over cells), and a ring counts
them with one ``bincount`` a block.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from mlship.model.profile import CategoryBins, NumericBins, Profile
from mlship.scoring.columns import MISSING_CATEGORY, to_categorical, to_numeric

if TYPE_CHECKING:
    from mlship.scoring.results import Prediction

BLOCKS = 10  # the window moves a tenth at a time
PREFIX = "drift-"  # a worker's ring file: drift-<pid>-<token>.npy
Pending = list[tuple[dict[str, np.ndarray], "Prediction"]]


@dataclass(frozen=True)
class Tracked:
    """One distribution: its bins, then one slot for missing values, from ``offset`` on."""

    name: str
    feature: bool
    bins: NumericBins | CategoryBins
    offset: int
    reference_null_rate: float = 0.0

    @property
    def null(self) -> int:
        return self.offset + self.bins.size

    @functools.cached_property
    def integers(self) -> dict[int, int]:
        """The bins of categories spelled as integers, by number (7 is category "7")."""
        names = self.bins.categories if isinstance(self.bins, CategoryBins) else {}
        return {
            int(n): i for i, n in enumerate(names) if n.lstrip("-").isdigit() and str(int(n)) == n
        }

    def slots(self, values: np.ndarray) -> np.ndarray:
        """Each value's slot: its bin's, or the null slot when missing (as validation reads
        values: ``None``, NaN and the empty string are missing)."""
        if isinstance(self.bins, CategoryBins):
            cells = values.tolist()
            if set(map(type, cells)) <= {int}:  # JSON integers (a store id): no text needed
                found = map(self.integers.get, cells, itertools.repeat(self.bins.size - 1))
                return self.offset + np.fromiter(found, dtype=np.intp, count=len(cells))
            text = to_categorical(values)[0]
            missing = text == MISSING_CATEGORY
            return np.where(missing, self.null, self.offset + self.bins.bin_of(text))
        numbers = to_numeric(values)[0]
        missing = ~np.isfinite(numbers)
        return np.where(missing, self.null, self.offset + self.bins.bin_of(numbers))


def distributions(profile: Profile) -> list[Tracked]:
    """Every feature, then the prediction: labels or values, then each class's probability."""
    found: list[Tracked] = []
    named: list[tuple[str, bool, NumericBins | CategoryBins, float]] = [
        (name, True, f.bins, f.null_rate) for name, f in profile.features.items()
    ]
    prediction = profile.prediction
    for bins in (prediction.labels, prediction.values):
        if bins is not None:
            named.append(("prediction", False, bins, 0.0))
    for label, bins in (prediction.probabilities or {}).items():
        named.append((f"proba_{label}", False, bins, 0.0))
    offset = 0
    for name, feature, bins, nulls in named:
        found.append(Tracked(name, feature, bins, offset, nulls))
        offset += bins.size + 1
    return found


def column(pending: Pending, name: str) -> np.ndarray:
    """One feature's cells of every queued request, in one array."""
    parts = [columns[name] for columns, _ in pending]
    values = np.concatenate(parts)
    if values.dtype.kind in "US":  # numbers and text mixed: keep each cell as it was sent
        values = np.concatenate(parts, dtype=object)
    return values


class Layout:
    """The distributions watched; the numeric features of a batch are converted as one block
    (one ``astype`` for all of them) and binned a feature at a time (``bin_of``)."""

    def __init__(self, profile: Profile) -> None:
        self.tracked = distributions(profile)
        self.width = self.tracked[-1].null + 1
        self.numeric = [j for j, t in enumerate(self.tracked)
                        if t.feature and isinstance(t.bins, NumericBins)]  # fmt: skip
        self.bins = [cast(NumericBins, self.tracked[j].bins) for j in self.numeric]
        self.offsets = np.array([self.tracked[j].offset for j in self.numeric], dtype=np.intp)
        self.nulls = np.array([self.tracked[j].null for j in self.numeric], dtype=np.intp)

    def numeric_slots(self, raw: list[np.ndarray]) -> np.ndarray:
        """(rows, numeric features) slots; one conversion when every cell allows it (scored
        rows hold numbers, numeric text or missing values), else column by column."""
        try:
            block = np.stack(raw).astype(np.float64)  # (features, rows): each row contiguous
        except (TypeError, ValueError):  # None, "" (missing): the per-column rules
            block = np.stack([to_numeric(values)[0] for values in raw])
        bins = np.stack([self.bins[k].bin_of(values) for k, values in enumerate(block)], axis=1)
        return np.where(np.isfinite(block.T), self.offsets + bins, self.nulls)

    def slots(self, pending: Pending) -> np.ndarray:
        """One slot index per row (rows) and distribution (columns) for queued requests."""
        tracked, numeric = self.tracked, self.numeric
        results = [r for _, r in pending]
        rows = sum(len(r.predictions) for r in results)
        out = np.empty((rows, len(tracked)), dtype=np.intp)
        if numeric:
            out[:, numeric] = self.numeric_slots(
                [column(pending, tracked[j].name) for j in numeric]
            )
        labels = list(itertools.chain.from_iterable(r.predictions for r in results))
        given = [r.probabilities for r in results if r.probabilities is not None]
        proba = np.concatenate(given) if given and len(given) == len(results) else None
        position = {str(c): i for i, c in enumerate(results[0].classes)}
        for j, t in enumerate(tracked):
            if t.feature:
                if j in numeric:
                    continue
                values = column(pending, t.name)
            elif t.name == "prediction":
                kind = object if isinstance(t.bins, CategoryBins) else np.float64
                values = np.asarray(labels, dtype=kind)
            elif proba is not None and t.name.removeprefix("proba_") in position:
                values = proba[:, position[t.name.removeprefix("proba_")]]
            else:
                values = np.full(rows, np.nan)
            out[:, j] = t.slots(values)
        return out


class Ring:
    """Slot counts of the last ``window`` rows in ``BLOCKS`` blocks, then (row ``BLOCKS``) the
    totals since start. In memory, or in a ``.npy`` file other processes map (``path``)."""

    def __init__(self, width: int, window: int, path: Path | None = None) -> None:
        self.block_rows = max(1, math.ceil(window / BLOCKS))
        shape = (BLOCKS + 1, width)
        self.path = path
        if path is None:
            self.counts: np.ndarray = np.zeros(shape, dtype=np.int64)
        else:  # made under a hidden name, then renamed: a reader maps a whole file or none
            hidden = path.with_name(f".{path.name}")
            self.counts = np.lib.format.open_memmap(hidden, "w+", np.int64, shape)
            hidden.replace(path)
        self.head = 0  # the block being filled
        self.filled = 0  # its rows

    def add(self, rows: np.ndarray) -> None:
        """Count rows (one slot index per row and distribution); when the block being filled
        is full, the oldest block is emptied and filled next."""
        width = self.counts.shape[1]
        self.counts[BLOCKS] += np.bincount(rows.ravel(), minlength=width)
        rows = rows[-BLOCKS * self.block_rows :]  # older rows would be evicted at once
        start = 0
        while start < len(rows):
            take = min(self.block_rows - self.filled, len(rows) - start)
            self.counts[self.head] += np.bincount(
                rows[start : start + take].ravel(), minlength=width
            )
            self.filled, start = self.filled + take, start + take
            if self.filled == self.block_rows:
                self.head = (self.head + 1) % BLOCKS
                self.counts[self.head] = 0
                self.filled = 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, as someone else
        return True
    return True


class Neighbours:
    """The other workers' ring files in the server's shared folder, mapped once each."""

    def __init__(self, folder: Path, own: Ring) -> None:
        self.folder = folder
        self.own = own
        self._mapped: dict[Path, np.ndarray] = {}

    def counts(self) -> Iterator[tuple[np.ndarray, bool]]:
        """Each other worker's counts, and whether that worker is alive."""
        for path in sorted(self.folder.glob(f"{PREFIX}*.npy")):
            if path == self.own.path:
                continue
            counts = self._mapped.get(path)
            if counts is None:
                with contextlib.suppress(OSError, ValueError):
                    counts = self._mapped[path] = np.load(path, mmap_mode="r")
            if counts is not None and counts.shape == self.own.counts.shape:
                yield counts, alive(int(path.name.removeprefix(PREFIX).split("-")[0]))
