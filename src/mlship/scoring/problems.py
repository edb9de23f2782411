"""Typed input problems: what is wrong, where, and one line for people.

Validation collects every problem (uncapped) as a ``Problem``; the edges (an HTTP reply, a CLI
line, a rejected-rows file) summarise them. The HTTP status of each code is decided once, in
``mlship.serving.errors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlship.errors import MlshipError


class Code(StrEnum):
    """What kind of problem; request-level codes first, then per-column and per-cell ones."""

    malformed = "malformed"  # the body is not JSON/CSV, or not an accepted shape
    unsupported_media_type = "unsupported_media_type"
    not_acceptable = "not_acceptable"  # no reply format the client's Accept header allows
    too_large = "too_large"  # body or row count over the limit
    no_rows = "no_rows"
    duplicate_column = "duplicate_column"
    row_shape = "row_shape"  # a row that is not an object, or an array of the wrong width
    missing_column = "missing_column"
    unknown_column = "unknown_column"
    not_a_number = "not_a_number"
    not_a_category = "not_a_category"
    out_of_range = "out_of_range"
    null_not_allowed = "null_not_allowed"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: at a row (0-based), a column, both, or neither."""

    code: Code
    message: str
    row: int | None = None
    column: str | None = None

    def where(self) -> str:
        parts = []
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)

    def line(self) -> str:
        """``row 3, column 'PriceCH': expected a number, got 'cheap'``."""
        where = self.where()
        return f"{where}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, Any]:
        """The wire form (``row``/``column`` only when known)."""
        out: dict[str, Any] = {}
        if self.row is not None:
            out["row"] = self.row
        if self.column is not None:
            out["column"] = self.column
        out["error"] = self.message
        return out


def summarize(problems: Sequence[Problem]) -> str:
    """One line for the first problem, with a count of the rest."""
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0].line() + more


class InputError(MlshipError):
    """Scoring input does not fit the model; carries every problem found.

    ``message`` overrides the one-line summary where the first problem alone would mislead
    (an array row of the wrong width names the expected column order, say).
    """

    def __init__(self, problems: Sequence[Problem], message: str | None = None) -> None:
        if not problems:
            raise ValueError("InputError needs at least one problem")
        self.problems = list(problems)
        self.message = message or summarize(self.problems)
        super().__init__(self.message)

    @classmethod
    def single(cls, code: Code, message: str) -> InputError:
        """A request-level problem with no row or column."""
        return cls([Problem(code, message)])
