"""Prometheus series of one app instance, and the ASGI middleware that feeds them."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from mlship.monitoring.live import LiveDrift, open_live_drift

if TYPE_CHECKING:
    import numpy as np

    from mlship.scoring.results import Prediction
    from mlship.serving.settings import ServeSettings

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# Column names come from callers: the label set is capped, later names count as "other".
MAX_COLUMN_LABELS = 100
MAX_LABEL_CHARS = 100
OTHER = "other"


class Metrics:
    """Series of one app (its own registry, so tests can build many apps in one process).

    With ``settings`` whose ``drift`` is not off, also the live drift series
    (``mlship.monitoring.live``), which describe every worker of the server.
    """

    def __init__(self, settings: ServeSettings | None = None) -> None:
        self.registry = CollectorRegistry()
        self.drift: LiveDrift | None = None if settings is None else open_live_drift(settings)
        if self.drift is not None:
            self.registry.register(self.drift)
        self.requests = Counter(
            "mlship_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "mlship_errors",
            "Requests answered with 4xx/5xx, by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlship_request_seconds",
            "Request latency by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter("mlship_rows_scored", "Rows scored.", registry=self.registry)
        self.ignored_columns = Counter(
            "mlship_ignored_columns",
            f"Requests that sent an unknown column, ignored (--extra-columns ignore); "
            f"the first {MAX_COLUMN_LABELS} names by name, later ones as {OTHER!r}.",
            ["column"],
            registry=self.registry,
        )
        self.log_written = Counter(
            "mlship_request_log_written_rows",
            "Scored rows written to the request log (--log-requests).",
            registry=self.registry,
        )
        self.log_files = Counter(
            "mlship_request_log_files", "Request log files written.", registry=self.registry
        )
        self.log_dropped = Counter(
            "mlship_request_log_dropped_rows",
            "Scored rows the request log dropped: queue_full (never waits), write_error.",
            ["reason"],
            registry=self.registry,
        )
        for reason in ("queue_full", "write_error"):
            self.log_dropped.labels(reason)
        self._column_labels: set[str] = set()
        # (route, status) -> its children; routes are the app's own or "other", so it stays small
        self._series: dict[tuple[str, int], tuple[Any, Any, Any]] = {}
        self._lock = threading.Lock()

    def scored(self, columns: dict[str, np.ndarray], result: Prediction) -> None:
        """Count a scored request's rows, and queue them for the live drift window."""
        self.rows.inc(len(result.predictions))
        if self.drift is not None:
            self.drift.record(columns, result)

    def observe(self, route: str, status: int, seconds: float) -> None:
        series = self._series.get((route, status))
        if series is None:  # label lookups take a lock and build tuples: once per pair
            code = str(status)
            errors = self.errors.labels(route, code) if status >= 400 else None
            series = (self.requests.labels(route, code), errors, self.latency.labels(route))
            self._series[(route, status)] = series
        requests, errors, latency = series
        requests.inc()
        if errors is not None:
            errors.inc()
        latency.observe(seconds)

    def ignored(self, names: Iterable[str]) -> None:
        """Count the unknown columns one request sent (each name once per request)."""
        with self._lock:
            labels = {self._column_label(str(name)[:MAX_LABEL_CHARS]) for name in names}
        for label in labels:
            self.ignored_columns.labels(label).inc()

    def _column_label(self, name: str) -> str:
        if name in self._column_labels:
            return name
        if len(self._column_labels) < MAX_COLUMN_LABELS and name != OTHER:
            self._column_labels.add(name)
            return name
        return OTHER


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Instrument:
    """Pure ASGI middleware: count and time every request (cheaper than BaseHTTPMiddleware)."""

    def __init__(self, app: Any, metrics: Metrics, known: set[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.known = known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def capture(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope["path"] if scope["path"] in self.known else "other"
            self.metrics.observe(route, status[0], time.perf_counter() - start)
