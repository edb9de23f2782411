"""Request/response logging: scored rows to Parquet (or CSV) files, off the scoring path.

``--log-requests URI`` turns it on (``mlship.serving.request_files`` for the destination and
the file formats). A scoring reply hands its rows to ``RequestLog.offer``, which only appends to
a bounded in-memory queue and never waits: when the queue already holds ``queue_rows`` rows the
request's rows are dropped and counted (``mlship_request_log_dropped_rows_total{reason=
"queue_full"}``). One background thread per process takes what is queued and writes a file
when its buffer reaches ``rotate_rows`` rows or its oldest row is ``rotate_seconds`` old.

``close`` (the app's shutdown, after SIGTERM has drained the requests) writes everything still
queued or buffered, within the time left of the grace period. A crash loses at most what was
not written yet: the queue plus the writer's buffer.

Sampling is per request and deterministic: a request is logged when the CRC-32 of its id falls
below ``sample_rate`` of the range, so a retried request (same ``X-Request-Id``) gets the same
decision on every worker and replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import zlib
from collections import deque
from typing import TYPE_CHECKING, Any

from mlship.serving.request_files import Destination, Entry

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from mlship.scoring.columns import Columns
    from mlship.scoring.predictor import Predictor
    from mlship.scoring.results import Prediction
    from mlship.serving.metrics import Metrics
    from mlship.serving.settings import ServeSettings
    from mlship.serving.shutdown import Drain

log = logging.getLogger("mlship.serving")
REQUEST_ID = "X-Request-Id"
MAX_ID_CHARS = 128
WAIT_SECONDS = 0.5  # how often the idle writer looks at the clock
MIN_FLUSH_SECONDS = 1.0  # the last write's time even when the requests took the whole grace


def request_id(headers: Mapping[str, str]) -> str:
    """The caller's ``X-Request-Id`` when it is short visible ASCII, else a new random one."""
    given = headers.get("x-request-id")
    if given and len(given) <= MAX_ID_CHARS and given.isascii() and given.isprintable():
        return given
    return os.urandom(16).hex()


def sampled(rid: str, rate: float) -> bool:
    """Whether the request with id ``rid`` is logged at ``rate`` (0 never, 1 always)."""
    if rate >= 1:
        return True
    return zlib.crc32(rid.encode()) < rate * 2**32


class RequestLog:
    """A bounded queue of scored requests and the thread that writes them to ``destination``."""

    def __init__(
        self,
        destination: Destination,
        metrics: Metrics,
        sample_rate: float = 1.0,
        limits: tuple[int, int, float] = (10_000, 10_000, 60.0),
    ) -> None:
        self.destination = destination
        self.metrics = metrics
        self.sample_rate = sample_rate
        self.queue_rows, self.rotate_rows, self.rotate_seconds = limits
        self._entries: deque[Entry] = deque()
        self._queued = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._buffer: list[Any] = []  # the next file's converted rows, all of ``_model``
        self._buffered = 0
        self._model: Predictor | None = None
        self._started_at = 0.0  # when the buffer's first rows arrived (monotonic)
        self._first_time = 0.0  # and their time.time(), which names the file
        self._thread = threading.Thread(target=self._run, name="mlship-request-log", daemon=True)

    def record(self, rid: str, route: str, predictor: Predictor, columns: Columns,
               result: Prediction) -> None:  # fmt: skip
        """Queue one scored request, if its id is in the sample."""
        if sampled(rid, self.sample_rate):
            self.offer(Entry(time.time(), rid, route, predictor, columns, result))

    def offer(self, entry: Entry) -> bool:
        """Queue ``entry`` without waiting; False (rows dropped and counted) when full."""
        rows = entry.rows
        with self._lock:
            accepted = not self._closing and self._queued + rows <= self.queue_rows
            if accepted:
                self._entries.append(entry)
                self._queued += rows
        if not accepted:
            self.metrics.log_dropped.labels("queue_full").inc(rows)
        elif self._queued + self._buffered >= self.rotate_rows:  # a file is due: wake the writer
            self._wake.set()
        return accepted

    @property
    def queued(self) -> int:
        return self._queued

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float) -> bool:
        """Write everything queued and buffered, waiting at most ``timeout`` s; True if done."""
        with self._lock:
            self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        done = not self._thread.is_alive()
        if not done:
            log.error("request log: %d row(s) not written in time", self._queued + self._buffered)
        return done

    def _take(self) -> list[Entry]:
        with self._lock:
            entries = list(self._entries)
            self._entries.clear()
            self._queued -= sum(e.rows for e in entries)
        return entries

    def _run(self) -> None:
        while True:
            closing = self._closing
            self._add(self._take())
            if closing:
                break
            if self._due():
                self._flush()
            self._wake.wait(self._wait_seconds())
            self._wake.clear()
        self._flush()

    def _add(self, entries: list[Entry]) -> None:
        """Convert queued entries right away (``Destination.convert``), writing a file
        whenever one is full."""
        run: list[Entry] = []
        rows = 0
        for entry in entries:
            if run and entry.predictor is not run[0].predictor:
                self._convert(run, rows)
                run, rows = [], 0
            run.append(entry)
            rows += entry.rows
            if self._buffered + rows >= self.rotate_rows:
                self._convert(run, rows)
                run, rows = [], 0
                self._flush()
        if run:
            self._convert(run, rows)

    def _convert(self, run: list[Entry], rows: int) -> None:
        if self._buffer and run[0].predictor is not self._model:
            self._flush()  # one model per file
        try:
            chunk = self.destination.convert(run)
        except Exception as exc:  # a value the format cannot hold must not stop the writer
            self._lost(rows, exc)
            return
        if not self._buffer:
            self._started_at, self._first_time = time.monotonic(), run[0].time
        self._model = run[0].predictor
        self._buffer.append(chunk)
        self._buffered += rows

    def _due(self) -> bool:
        old = time.monotonic() - self._started_at >= self.rotate_seconds
        return bool(self._buffer) and (old or self._buffered >= self.rotate_rows)

    def _wait_seconds(self) -> float:
        if not self._buffer:
            return WAIT_SECONDS
        left = self._started_at + self.rotate_seconds - time.monotonic()
        return max(0.0, min(WAIT_SECONDS, left))

    def _flush(self) -> None:
        chunks, rows = self._buffer, self._buffered
        self._buffer, self._buffered = [], 0
        if not chunks:
            return
        try:
            self.destination.write(chunks, self._first_time)
        except Exception as exc:  # a full disk or a storage outage must not stop the writer
            self._lost(rows, exc)
            return
        self.metrics.log_written.inc(rows)
        self.metrics.log_files.inc()

    def _lost(self, rows: int, exc: Exception) -> None:
        log.error("request log: %d row(s) lost: %s: %s", rows, type(exc).__name__, exc)
        self.metrics.log_dropped.labels("write_error").inc(rows)


def open_request_log(settings: ServeSettings, metrics: Metrics) -> RequestLog | None:
    """The process's request log as ``settings`` ask (None: off); a bad URI fails here."""
    if settings.log_requests is None:
        return None
    limits = (settings.log_queue_rows, settings.log_rotate_rows, settings.log_rotate_seconds)
    destination = Destination.open(settings.log_requests)
    return RequestLog(destination, metrics, settings.log_sample_rate, limits)


def flush_seconds(grace: float, drain_since: float | None) -> float:
    """What is left of the grace period for the last write (at least ``MIN_FLUSH_SECONDS``)."""
    spent = 0.0 if drain_since is None else time.monotonic() - drain_since
    return max(grace - spent, MIN_FLUSH_SECONDS)


@contextlib.asynccontextmanager
async def writing(
    request_log: RequestLog | None, grace: float, drain: Drain
) -> AsyncIterator[None]:
    """The writer thread while the app runs; at shutdown, the last write within the grace."""
    if request_log is None:
        yield
        return
    request_log.start()
    try:
        yield
    finally:
        timeout = flush_seconds(grace, drain.since)
        await asyncio.to_thread(request_log.close, timeout)
