"""Where a request body is scored: on the event loop, or in the thread pool.

A hop to the thread pool cost a 1,000-row logistic regression request 17% of its throughput
over HTTP (docs/benchmarks.md), so scoring on the event loop is faster; but while the loop
scores, nothing else on it runs, readiness probes included. So a body is scored on the loop
when it is small, or when it is at most ``MAX_INLINE_BYTES`` and the bodies this worker has
timed of the same kind (protocol and content type: CSV costs more a byte than JSON) say
it will take at most ``BUDGET_SECONDS``. The rest, and every compressed body (whose size says
nothing), goes to the pool.

The estimate is seconds per body byte. A body scored on the loop is timed by the wall clock:
that is how long it held the loop. One in the pool is timed by its thread's CPU time
(``time.thread_time``): with eight bodies in the pool on one core, each one's wall time counts
the other seven's work, so a quick model looked slow and stayed in the pool (the forest's
1,000-row bodies gained a median 1-1.5%, at most 11%, in two A/Bs; docs/benchmarks.md).
With ``--threads`` above 1 the pool uses the wall clock too, since the thread's CPU time would
leave out the other threads' share of the work. The estimate is smoothed over
successful bodies, and raised at once (never lowered) by a failed one, which can cost more than
a good body (a bad cell in every row takes the per-cell path) and would otherwise teach
nothing. A linear model's or hist gradient boosting's 1,000 rows (a few to ~11 milliseconds)
stay on the loop, and so do a random forest's (~17-20 ms, near the budget); slower bodies go
to the pool. Whatever the estimate says, a body on the loop is at most ``MAX_INLINE_BYTES``,
which bounds how long one can hold the loop.
"""

from __future__ import annotations

from collections.abc import Hashable

ALWAYS_INLINE_BYTES = 64 * 1024  # tens of microseconds to a few milliseconds of work
MAX_INLINE_BYTES = 256 * 1024  # ~2,800 OJ rows of JSON
# A readiness probe waits behind the bodies already on the loop, at most this long each (with
# 8 connections, ~200 ms: a fifth of a 1 s probe timeout).
# At 10 ms, hist gradient boosting's 1,000-row JSON bodies (~10-11 ms) sat on the line and
# went to the pool in some runs, at a quarter less throughput (docs/benchmarks.md).
BUDGET_SECONDS = 0.025
SMOOTHING = 0.2
MAX_KINDS = 32  # content types come from callers: later kinds are not learnt (the pool)


class InlineBudget:
    """Seconds per body byte of this worker's recent requests, by kind, and the decision."""

    def __init__(self, budget: float | None = None) -> None:
        self.budget = BUDGET_SECONDS if budget is None else budget
        self.seconds_per_byte: dict[Hashable, float] = {}  # a kind: unknown until timed

    def inline(self, kind: Hashable, size: int, compressed: bool) -> bool:
        if compressed:
            return False
        if size <= ALWAYS_INLINE_BYTES:
            return True
        rate = self.seconds_per_byte.get(kind)
        return size <= MAX_INLINE_BYTES and rate is not None and size * rate <= self.budget

    def observe(self, kind: Hashable, size: int, seconds: float, *, ok: bool) -> None:
        """Learn from a timed, uncompressed body; small ones say little about per-byte cost."""
        if size <= ALWAYS_INLINE_BYTES:
            return
        rate = seconds / size
        old = self.seconds_per_byte.get(kind)
        if old is None:  # a failure can be cheap (bad JSON at byte 1): it teaches no first rate
            if ok and len(self.seconds_per_byte) < MAX_KINDS:
                self.seconds_per_byte[kind] = rate
        elif not ok:
            self.seconds_per_byte[kind] = max(old, rate)
        else:
            self.seconds_per_byte[kind] = old + SMOOTHING * (rate - old)
