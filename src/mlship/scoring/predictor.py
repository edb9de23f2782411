"""The predictor core: a model loaded once, its input contract, validation and prediction.

Rows travel as *columns*: a mapping of column name to a numpy array, which is what both
runtimes want and what every request codec and batch reader produces. ``select`` checks the
set of columns, ``validate`` coerces each column and reports every bad cell as a typed
``Problem`` with a row mask, ``predict`` scores. Request shapes (JSON records, CSV, ...) are
the serving layer's business, not this module's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlship.errors import ModelError
from mlship.model.saved import Column, ModelInfo, SavedModel, check_runtime
from mlship.model.training_table import unused_columns
from mlship.scoring.backends import Backend, SklearnBackend, load_backend
from mlship.scoring.columns import (
    FLOAT32_MAX,
    MISSING_CATEGORY,
    Columns,
    frame_columns,
    real_numbers_only,
    shown,
    to_categorical,
    to_numeric,
)
from mlship.scoring.problems import Code, InputError, Problem
from mlship.scoring.results import Prediction, label_indices, positive_index
from mlship.scoring.verdicts import Scored, Validated

if TYPE_CHECKING:
    import pandas as pd

ExtraColumns = Literal["reject", "ignore"]
NULL_ERROR = "missing value not allowed (this column had none in training)"
UNSCORABLE = "the model gives no finite score for these values (too large in magnitude)"


class Predictor:
    """A loaded model plus everything needed to check and score rows for it."""

    def __init__(
        self,
        backend: Backend,
        columns: list[Column],
        info: ModelInfo,
        unused: frozenset[str] = frozenset(),
    ) -> None:
        self.backend = backend
        # Training-table columns the model does not use (target, dropped): ignored, not unknown.
        self.unused = unused - {c.name for c in columns}
        self.columns = columns
        self.info = info
        self.column_names = [c.name for c in columns]
        self._expected = set(self.column_names)
        self._numeric = [c.name for c in columns if c.kind == "numeric"]
        self._categorical = [c.name for c in columns if c.kind == "categorical"]
        self._nullable = {c.name for c in columns if c.nullable}
        self._position = {name: i for i, name in enumerate(self.column_names)}
        self.is_classifier = info.task == "classification"
        self._labels = np.asarray(info.classes, dtype=object)  # picked by index per row
        # Binary classifiers: the threshold on P(positive_class); None labels by argmax.
        binary = self.is_classifier and len(info.classes) == 2
        self._positive = positive_index(info.classes, info.positive_class) if binary else None
        self.threshold = info.decision_threshold if binary else None
        # For /metadata: the threshold in force (0.5 is argmax's), the rule, the positive class.
        self.decision = {
            "decision_threshold": (self.threshold or 0.5) if binary else None,
            "decision_rule": "threshold" if self.threshold is not None else "argmax",
            "positive_class": info.classes[self._positive or 0] if binary else info.positive_class,
        }

    @property
    def runtime(self) -> str:
        return self.backend.name

    @classmethod
    def load(
        cls,
        model_dir: Path | str,
        runtime: str = "auto",
        threads: int = 1,
        manifest_sha256: str | None = None,
        compiled_trees: bool = True,
    ) -> Predictor:
        """Load a saved model dir; ``runtime`` auto uses the ONNX twin when it passed parity.

        ``manifest_sha256`` pins the dir to the digest the registry recorded for it;
        ``compiled_trees`` False keeps a tree model's trees in onnxruntime.
        """
        chosen = check_runtime(runtime)
        saved = SavedModel.open(model_dir, manifest_sha256=manifest_sha256)
        backend = load_backend(saved, chosen, threads, compiled_trees)
        info = saved.info
        if info.task == "classification" and not info.classes:
            if not isinstance(backend, SklearnBackend):
                raise ModelError(f"{saved.root}/MLmodel metadata lists no classes")
            info = replace(info, classes=[str(c) for c in backend.estimator.classes_])
        return cls(backend, saved.columns, info, unused_columns(saved.root, info.target))

    def signature(self) -> list[dict[str, Any]]:
        """The input contract, as served by ``/metadata``."""
        return [
            {
                "name": c.name,
                "type": "number" if c.kind == "numeric" else "string",
                "nullable": c.nullable,
            }
            for c in self.columns
        ]

    # -- the set of columns ----------------------------------------------------------------

    def missing(self, names: Iterable[Any]) -> list[str]:
        """The model's columns that ``names`` lacks, in signature order."""
        present = {str(n) for n in names}
        return [c for c in self.column_names if c not in present]

    def unknown(self, names: Iterable[str]) -> list[str]:
        """Names that are neither model columns nor training-table columns it does not use."""
        return [n for n in names if n not in self._expected and n not in self.unused]

    def select(
        self,
        names: Sequence[Any],
        values: Mapping[str, np.ndarray],
        extra: ExtraColumns = "reject",
        on_ignored: Callable[[list[str]], None] | None = None,
    ) -> Columns:
        """Columns given by name (a table, a CSV, a dataframe_split): check the name set.

        Unknown columns are rejected, or with ``extra="ignore"`` reported to ``on_ignored``.
        """
        counts = Counter(str(n) for n in names)
        duplicated = [name for name, count in counts.items() if count > 1]
        if duplicated:
            raise InputError(
                [Problem(Code.duplicate_column, "given more than once", column=duplicated[0])]
            )
        problems = [
            Problem(Code.missing_column, "required column is missing", column=c)
            for c in self.missing(counts)
        ]
        unknown = self.unknown(counts)
        if extra == "reject":
            problems += [Problem(Code.unknown_column, "unknown column", column=c) for c in unknown]
        if problems:
            raise InputError(problems)
        if unknown and on_ignored is not None:
            on_ignored(unknown)
        return {name: values[name] for name in self.column_names}

    # -- validation ------------------------------------------------------------------------

    def validate(self, columns: Columns) -> Validated:
        """Coerce raw columns to the model's dtypes; every problem by row and column."""
        rows = len(next(iter(columns.values()))) if columns else 0
        if rows == 0:
            raise InputError.single(Code.no_rows, "no rows to score")
        out = self._numeric_fast(columns)
        problems: list[Problem] = []
        for name in self._numeric if not out else ():
            out[name] = self._numeric_column(name, columns[name], problems)
        for name in self._categorical:
            out[name] = self._categorical_column(name, columns[name], problems)
        bad = np.zeros(rows, dtype=bool)
        if problems:
            problems.sort(key=lambda p: (p.row or 0, self._position[p.column or ""]))
            bad[[p.row for p in problems if p.row is not None]] = True
        return Validated(out, bad, problems)

    def _numeric_column(self, name: str, raw: np.ndarray, problems: list[Problem]) -> np.ndarray:
        values, bad = to_numeric(raw)
        problems += [
            Problem(Code.not_a_number, f"expected a number, got {shown(raw[r])}", int(r), name)
            for r in np.flatnonzero(bad)
        ]
        huge = np.abs(values) > FLOAT32_MAX  # also catches inf
        problems += [
            Problem(Code.out_of_range, "value out of range (|x| > 3.4e38)", int(r), name)
            for r in np.flatnonzero(huge)
        ]
        if name not in self._nullable:
            missing = np.isnan(values) & ~bad
            problems += [
                Problem(Code.null_not_allowed, NULL_ERROR, int(r), name)
                for r in np.flatnonzero(missing)
            ]
        return values

    def _categorical_column(
        self, name: str, raw: np.ndarray, problems: list[Problem]
    ) -> np.ndarray:
        text, bad = to_categorical(raw)
        if bad.any():
            problems += [
                Problem(
                    Code.not_a_category,
                    f"expected a string or number, got {type(raw[r]).__name__}",
                    int(r),
                    name,
                )
                for r in np.flatnonzero(bad)
            ]
        if name not in self._nullable:
            missing = text == MISSING_CATEGORY
            if missing.any():
                problems += [
                    Problem(Code.null_not_allowed, NULL_ERROR, int(r), name)
                    for r in np.flatnonzero(missing & ~bad)
                ]
        return text

    def _numeric_fast(self, columns: Columns) -> Columns:
        """All numeric columns converted in one vectorised step, or {} if any cell needs a look.

        The common case (every cell a number, nothing missing where it may not be) costs one
        conversion and two checks for the whole block; anything else takes the per-column
        path, which finds and names each problem.
        """
        if not self._numeric:
            return {}
        if not all(real_numbers_only(columns[c]) for c in self._numeric):
            return {}
        # One row a column, so each column handed on is contiguous (what onnxruntime copies);
        # np.array of equal-length columns is np.stack's result at a third of its overhead.
        block = np.array([columns[c] for c in self._numeric]).astype(np.float64, copy=False)
        if (np.abs(block) > FLOAT32_MAX).any():
            return {}
        if not np.isfinite(block).all():
            missing_ok = np.array([c in self._nullable for c in self._numeric])[:, None]
            if np.isinf(block).any() or (np.isnan(block) & ~missing_ok).any():
                return {}
        return dict(zip(self._numeric, block, strict=True))

    # -- prediction ------------------------------------------------------------------------

    def predict(self, columns: Columns) -> Prediction:
        """Validate then score; raises ``InputError`` naming every bad cell or row."""
        checked = self.validate(columns)
        if not checked.ok:
            raise InputError(checked.problems)
        scored = self.score(checked)
        if scored.problems or scored.prediction is None:
            raise InputError(scored.problems)
        return scored.prediction

    def score(self, checked: Validated) -> Scored:
        """Score the rows without problems; a row the model gives no finite output is a problem.

        A float32 twin (compiled before 0.2) can meet a difference of infinities near its
        limit, and a NaN probability is no answer to give.
        """
        keep, good = checked.good()
        problems = list(checked.problems)
        if not len(keep):
            return Scored(keep, None, problems)
        result = self.predict_valid(good)
        if not result.all_finite():
            finite = result.finite_rows()
            problems += [Problem(Code.out_of_range, UNSCORABLE, int(row)) for row in keep[~finite]]
            problems.sort(key=lambda p: p.row or 0)
            keep, result = keep[finite], result.take(finite)
        return Scored(keep, result, problems)

    def predict_frame(self, frame: pd.DataFrame, extra: ExtraColumns = "ignore") -> Prediction:
        """Score a DataFrame (a notebook, a test); columns the model does not use are ignored."""
        names, values = frame_columns(frame, self.column_names)
        return self.predict(self.select(names, values, extra))

    def predict_valid(self, columns: Columns) -> Prediction:
        """Score columns that ``validate`` accepted."""
        if self.is_classifier:
            proba = self.backend.probabilities(columns)
            classes = self.info.classes
            chosen = label_indices(proba, self._positive, self.threshold)
            return Prediction(self._labels[chosen].tolist(), proba, classes, chosen)
        return Prediction(self.backend.values(columns).tolist(), None, [])
