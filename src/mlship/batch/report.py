"""Bad rows placed in their input files, for people and for the rejected-rows output."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlship.scoring.problems import Code, InputError, Problem

REPORTED = 5  # bad rows kept for the end-of-job report


@dataclass(frozen=True)
class Located:
    """A problem placed in its file: row from 0 within the file, CSV line when known."""

    file: str
    error: str
    row: int | None = None
    line: int | None = None
    column: str | None = None
    code: Code = Code.malformed

    def problem(self) -> Problem:
        return Problem(self.code, self.error, self.row, self.column)

    def describe(self) -> str:
        """``in.csv line 7, column 'x': expected a number, ...``."""
        where = self.file
        if self.line is not None:
            where += f" line {self.line}"
        elif self.row is not None:
            where += f" row {self.row} (from 0)"
        if self.column:
            where += f", column {self.column!r}"
        return f"{where}: {self.error}"

    def error_text(self) -> str:
        """The error with its column, for the rejected-rows file."""
        return f"column {self.column!r}: {self.error}" if self.column else self.error


class BadRowsError(InputError):
    """Rows of a batch input that do not fit the model, located in their files."""

    def __init__(self, located: Sequence[Located], total: int) -> None:
        more = f" (+{total - 1} more)" if total > 1 else ""
        super().__init__([p.problem() for p in located], located[0].describe() + more)
        self.located = list(located)


@dataclass
class BatchResult:
    rows: int = 0  # rows read
    scored: int = 0  # rows written to the output
    rejected: int = 0  # bad rows (skip mode) and malformed CSV lines
    problems: list[Located] = field(default_factory=list)  # the first few
    output: str = ""
    rejected_output: str | None = None

    def note(self, located: Sequence[Located]) -> None:
        """Count bad rows and keep the first ``REPORTED`` for the report."""
        self.rejected += len(located)
        self.problems += located[: max(0, REPORTED - len(self.problems))]


def record_json(values: Mapping[Any, Any]) -> str:
    """One input row as JSON for the rejected-rows file (NaN and None become null)."""
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or (isinstance(value, float) and math.isnan(value)):
            value = None
        elif not isinstance(value, str | int | float | bool):
            value = str(value)
        clean[str(key)] = value
    return json.dumps(clean)
