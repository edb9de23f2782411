"""What validation and scoring conclude about each row of an input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlship.scoring.columns import Columns
from mlship.scoring.problems import Problem
from mlship.scoring.results import Prediction


@dataclass(frozen=True)
class Validated:
    """Coerced columns for every row, each row's verdict, and every problem found.

    Cells that failed hold a placeholder (NaN or the missing category); use ``good`` to take
    only the rows without problems.
    """

    columns: Columns
    bad: np.ndarray
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def good(self) -> tuple[np.ndarray, Columns]:
        """Positions of the rows without problems, and their columns: read-only (with no bad
        row they are the validated columns themselves, which may share the caller's arrays)."""
        if not self.bad.any():  # the common case: no copy of any column
            return np.arange(len(self.bad)), self.columns
        keep = np.flatnonzero(~self.bad)
        return keep, {name: values[keep] for name, values in self.columns.items()}


@dataclass(frozen=True)
class Scored:
    """The rows that scored (positions and prediction) and every problem, per row."""

    keep: np.ndarray
    prediction: Prediction | None
    problems: list[Problem]

    def first_problem_by_row(self) -> dict[int, Problem]:
        """Each bad row's first problem, in row order."""
        first: dict[int, Problem] = {}
        for problem in self.problems:
            if problem.row is not None:
                first.setdefault(problem.row, problem)
        return dict(sorted(first.items()))
