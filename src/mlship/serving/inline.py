"""Where a request body is scored: on the event loop, or in the thread pool.

A hop to the thread pool costs a request about a fifth of its throughput at 1,000 rows of a
logistic regression (docs/benchmarks.md), so scoring on the event loop is faster; but while
the loop scores, nothing else on it runs, readiness probes included. So a body is scored on
the loop when it is small, or when this model's recent requests say it will be done within
``BUDGET_SECONDS``; the rest (and every compressed body, whose size says nothing) goes to
the pool. The estimate is seconds per body byte, smoothed over past requests: a random
forest at 1,000 rows (tens of milliseconds) keeps going to the pool, a linear model's
1,000-row request (a few milliseconds) stays on the loop.
"""

from __future__ import annotations

ALWAYS_INLINE_BYTES = 64 * 1024  # tens of microseconds to a few milliseconds of work
BUDGET_SECONDS = 0.01
SMOOTHING = 0.2


class InlineBudget:
    """Seconds per body byte of this worker's recent requests, and the decision it implies."""

    def __init__(self, budget: float | None = None) -> None:
        self.budget = BUDGET_SECONDS if budget is None else budget
        self.seconds_per_byte: float | None = None  # unknown until a large body was timed

    def inline(self, size: int, compressed: bool) -> bool:
        if compressed:
            return False
        if size <= ALWAYS_INLINE_BYTES:
            return True
        rate = self.seconds_per_byte
        return rate is not None and size * rate <= self.budget

    def observe(self, size: int, seconds: float) -> None:
        """Learn from a timed body; small ones say little about per-byte cost."""
        if size <= ALWAYS_INLINE_BYTES:
            return
        rate = seconds / size
        old = self.seconds_per_byte
        self.seconds_per_byte = rate if old is None else old + SMOOTHING * (rate - old)
