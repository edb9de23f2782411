"""``InlineBudget``: which bodies are scored on the event loop, learnt per kind of body."""

from __future__ import annotations

from mlship.serving.inline import (
    ALWAYS_INLINE_BYTES,
    MAX_INLINE_BYTES,
    MAX_KINDS,
    InlineBudget,
)

JSON, CSV = ("score", "application/json"), ("score", "text/csv")
LARGE = 100_000  # bytes: above the always-inline size, below the ceiling


def test_small_bodies_always_inline_compressed_never_large_once_known_to_be_quick() -> None:
    budget = InlineBudget(budget=0.01)
    assert budget.inline(JSON, ALWAYS_INLINE_BYTES, compressed=False)
    assert not budget.inline(JSON, 10, compressed=True)
    assert not budget.inline(JSON, LARGE, compressed=False)  # unknown: the pool
    budget.observe(JSON, LARGE, 0.002, ok=True)
    assert budget.inline(JSON, LARGE, compressed=False)
    assert not budget.inline(JSON, MAX_INLINE_BYTES + 1, compressed=False)  # the ceiling
    assert not budget.inline(CSV, LARGE, compressed=False)  # another kind: its own estimate


def test_a_slow_failure_raises_the_estimate_and_a_cheap_one_teaches_nothing() -> None:
    budget = InlineBudget(budget=0.01)
    budget.observe(JSON, LARGE, 0.0001, ok=False)  # bad JSON at byte 1: no first rate
    assert not budget.inline(JSON, LARGE, compressed=False)
    budget.observe(JSON, LARGE, 0.002, ok=True)
    budget.observe(JSON, LARGE, 0.0001, ok=False)  # never lowers a known rate
    assert budget.seconds_per_byte[JSON] == 0.002 / LARGE
    budget.observe(JSON, LARGE, 0.05, ok=False)  # a bad cell in every row: slow
    assert not budget.inline(JSON, LARGE, compressed=False)


def test_kinds_are_capped() -> None:
    budget = InlineBudget()
    for i in range(MAX_KINDS + 5):
        budget.observe(("score", f"type/{i}"), LARGE, 0.001, ok=True)
    assert len(budget.seconds_per_byte) == MAX_KINDS
