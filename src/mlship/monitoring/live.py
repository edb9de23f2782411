"""Live drift in ``/metrics``: the service's recent rows against the reference profile.

Every scored request's rows are counted in the profile's bins (``mlship.model.profile``: the
bins and the PSI ``mlship monitor`` uses): each feature, the predicted labels (or values) and
each class's probability. A request only queues its columns and prediction (a lock and an
append). Every second, and at every scrape, a thread bins the queue at once with numpy
(``mlship.monitoring.window``) into a ring of 10 blocks of ``window / 10`` rows. The window
is the last ``window`` rows less up to one block: it moves a block at a time, the oldest block
forgotten whole. The queue never holds more than a window's worth of rows: older requests
would be forgotten at once, so they are dropped unbinned and counted
(``mlship_drift_skipped_rows_total``), which bounds the work to about ``window`` rows a second
whatever the traffic. PSI is computed only when ``/metrics`` is read.

With ``--workers N`` each worker process keeps its ring in a memory-mapped file in a folder
``mlship serve`` makes for the server (``drift_shared_dir``). Whichever worker answers a scrape
sums every live worker's window, and every worker's counters (a dead worker's too, so they
never go back): the series describe the whole server, not the worker that happened to answer.
Another worker's last second may not be in them yet.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mlship.errors import MlshipError, ModelError
from mlship.model import layout
from mlship.model.profile import CategoryBins, Profile, psi, read_profile
from mlship.monitoring.window import (
    BLOCKS,
    PREFIX,
    Layout,
    Neighbours,
    Ring,
)

if TYPE_CHECKING:
    from mlship.scoring.results import Prediction

log = logging.getLogger("mlship.serving")
TICK_SECONDS = 1.0  # how often a worker bins its queue (and at every scrape)
SHARED_DIR = "MLSHIP_DRIFT_SHARED_DIR"


class DriftSettings(Protocol):  # ``mlship.serving.settings.ServeSettings`` has these
    @property
    def model_dir(self) -> Path: ...
    @property
    def workers(self) -> int: ...
    @property
    def drift(self) -> str: ...
    @property
    def drift_window(self) -> int: ...
    @property
    def drift_shared_dir(self) -> str | None: ...


class LiveDrift:
    """One worker's window, and the Prometheus collector of the server's drift series."""

    def __init__(self, profile: Profile, window: int = 1000, shared: Path | None = None) -> None:
        self.layout = Layout(profile)
        self.tracked = self.layout.tracked
        self.features = [t for t in self.tracked if t.feature]
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}.npy"
        # One slot more than the layout: the totals row's last slot counts skipped rows.
        width = self.layout.width + 1
        self.ring = Ring(width, window, None if shared is None else shared / name)
        self.neighbours = None if shared is None else Neighbours(shared, self.ring)
        self.window = window
        self.failed_rows = 0
        self._pending: deque[tuple[dict[str, np.ndarray], Prediction]] = deque()
        self._pending_rows = 0
        self._skipped = 0
        self._lock = threading.Lock()  # the queue
        self._fold_lock = threading.Lock()  # the ring
        threading.Thread(target=self._tick, name="mlship-drift", daemon=True).start()

    def record(self, columns: dict[str, np.ndarray], result: Prediction) -> None:
        """Queue one scored request (the model's columns as sent, and the prediction): a lock
        and an append. Requests older than the queue's last ``window`` rows are dropped unbinned
        (the window would forget them at once) and counted as skipped."""
        rows = len(result.predictions)
        with self._lock:
            self._pending.append((columns, result))
            self._pending_rows += rows
            while self._pending_rows - len(self._pending[0][1].predictions) >= self.window:
                dropped = len(self._pending.popleft()[1].predictions)
                self._pending_rows -= dropped
                self._skipped += dropped

    def fold(self) -> None:
        """Bin what is queued into the ring; never raises (a failure is logged and counted)."""
        with self._fold_lock:
            with self._lock:
                pending, self._pending, self._pending_rows = list(self._pending), deque(), 0
                skipped, self._skipped = self._skipped, 0
            self.ring.counts[BLOCKS, -1] += skipped
            if not pending:
                return
            try:
                self.ring.add(self.layout.slots(pending))
            except Exception:  # drift must never fail a request
                if not self.failed_rows:
                    log.exception("live drift: rows could not be counted")
                self.failed_rows += sum(len(r.predictions) for _, r in pending)

    def _tick(self) -> None:
        while True:
            time.sleep(TICK_SECONDS)
            self.fold()

    def totals(self) -> tuple[np.ndarray, np.ndarray, int]:
        """The server's window counts, its counts since start, and how many workers counted."""
        self.fold()
        own = self.ring.counts
        window, since, workers = own[:BLOCKS].sum(axis=0), own[BLOCKS].copy(), 1
        for counts, live in self.neighbours.counts() if self.neighbours else ():
            since += counts[BLOCKS]
            if live:
                window += counts[:BLOCKS].sum(axis=0)
                workers += 1
        return window, since, workers

    def describe(self) -> list[Metric]:
        return list(families().values())

    def collect(self) -> Iterator[Metric]:
        found = families()
        window, since, workers = self.totals()
        first = self.tracked[0]  # every row lands once in each distribution's slots
        seen = int(window[first.offset : first.null + 1].sum())
        for t in self.tracked:
            counts = window[t.offset : t.null]
            present = int(counts.sum())
            value = round(psi(t.bins.shares, counts / present), 6) if present else math.nan
            found["psi" if t.feature else "prediction_psi"].add_metric([t.name], value)
        for t in self.features:
            rate = int(window[t.null]) / seen if seen else math.nan
            found["null_rate"].add_metric([t.name], rate)
            found["reference_null_rate"].add_metric([t.name], t.reference_null_rate)
            found["null_values"].add_metric([t.name], int(since[t.null]))
            if isinstance(t.bins, CategoryBins):  # the bin before the null slot: other
                found["unseen_category_values"].add_metric([t.name], int(since[t.null - 1]))
        found["window_rows"].add_metric([], seen)
        found["workers"].add_metric([], workers)
        found["rows"].add_metric([], int(since[first.offset : first.null + 1].sum()))
        found["skipped_rows"].add_metric([], int(since[-1]))
        found["failed_rows"].add_metric([], self.failed_rows)
        return iter(found.values())


Family = GaugeMetricFamily | CounterMetricFamily
SERIES: dict[str, tuple[type[Family], str, list[str]]] = {
    "psi": (GaugeMetricFamily, "PSI of each feature's values in the window against the "
            "reference profile's bins (NaN until a value came).", ["feature"]),
    "prediction_psi": (GaugeMetricFamily, "PSI of the window's predicted labels (or values) "
                       "and of each class's probability against the profile.", ["output"]),
    "null_rate": (GaugeMetricFamily, "Share of the window's rows missing the feature.",
                  ["feature"]),
    "reference_null_rate": (GaugeMetricFamily, "Share of the training rows missing it.",
                            ["feature"]),
    "window_rows": (GaugeMetricFamily, "Rows the drift gauges cover (every worker's).", []),
    "workers": (GaugeMetricFamily, "Worker processes whose windows the gauges sum.", []),
    "rows": (CounterMetricFamily, "Scored rows binned for drift (every worker).", []),
    "skipped_rows": (CounterMetricFamily, "Scored rows not binned: more than the window's worth "
                     "came between two binnings (a second apart, or a scrape).", []),
    "null_values": (CounterMetricFamily, "Missing values of each feature (every worker).",
                    ["feature"]),
    "unseen_category_values": (CounterMetricFamily, "Values of a category the profile does "
                               "not list (its other bin: unseen in training, or under 1% "
                               "there), every worker.", ["feature"]),
    "failed_rows": (CounterMetricFamily, "Scored rows live drift failed to count (logged).", []),
}  # fmt: skip


def families() -> dict[str, Family]:
    """The series, empty: ``mlship_drift_<key>`` (counters end in ``_total``)."""
    return {
        key: kind(f"mlship_drift_{key}", doc, labels=labels)
        for key, (kind, doc, labels) in SERIES.items()
    }


def open_live_drift(settings: DriftSettings) -> LiveDrift | None:
    """The worker's live drift as ``settings.drift`` asks: off; auto (on when the model dir
    has a readable profile); on (a one-line ``MlshipError`` when it cannot be)."""
    if settings.drift == "off":
        return None
    shared = settings.drift_shared_dir
    try:
        profile = read_profile(settings.model_dir)
        if profile is None:
            if settings.drift == "auto":  # the quiet case: a dir from before profiles
                return None
            raise ModelError(f"the model dir has no reference profile ({layout.PROFILE})")
        if settings.workers > 1 and not shared:  # per-worker gauges would be wrong
            raise MlshipError(f"{settings.workers} workers and no shared folder ({SHARED_DIR})")
    except MlshipError as exc:
        if settings.drift == "on":
            raise MlshipError(f"--drift on: {exc}") from None
        log.warning("live drift off: %s", exc)
        return None
    return LiveDrift(profile, settings.drift_window, Path(shared) if shared else None)


def prepare(settings: DriftSettings) -> tuple[str, dict[str, str]]:
    """For ``mlship serve`` before the workers start: words for its start line, and with more
    than one worker the variable naming the folder they share (the caller removes it)."""
    if settings.drift == "off":
        return "", {}
    if not (settings.model_dir / layout.PROFILE).is_file():
        if settings.drift == "on":
            raise MlshipError(
                f"--drift on: the model dir has no reference profile ({layout.PROFILE})"
            )
        return ", no live drift (no reference profile)", {}
    note = f", live drift over {settings.drift_window:,} rows"
    if settings.workers <= 1:
        return note, {}
    try:
        return note, {SHARED_DIR: tempfile.mkdtemp(prefix="mlship-drift-")}
    except OSError as exc:
        if settings.drift == "on":
            raise MlshipError(f"--drift on: cannot make the workers' folder: {exc}") from None
        return f", no live drift (cannot make the workers' folder: {exc})", {}
