"""MLflow's ``python_function`` entry point of a saved model, for hosts without mlship.

``mlflow.pyfunc.load_model(<model dir>)``, ``mlflow models serve`` and MLflow's Spark UDF import
the module named by the dir's ``python_function`` ``loader_module``. Training writes a copy of
this file there as ``code/mlship_pyfunc.py`` and a copy of ``mlship/scoring/columns.py`` as
``code/mlship_columns.py``, so plain MLflow coerces every value with mlship's own rules (a
``StoreID`` of ``7``, ``7.0`` or ``"7"`` is category ``"7"``; integer columns are numbers) and
answers what mlship answers: the label (at the model's ``decision_threshold``, if it has one)
and, for classifiers, one ``proba_<class>`` column per class. A value mlship rejects, plain
MLflow rejects too, naming the row (0-based) and column.

This module needs numpy, pandas, PyYAML and the pickled pipeline's libraries, nothing of
mlship (an XGBoost classifier's label wrapper is shipped too, as ``code/mlship_xgboost.py``).
The signature declares every column ``any`` so MLflow's own schema enforcement (which refuses
int64 for a double column) leaves the coercion to this module.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mlship.scoring.columns import (
        FLOAT32_MAX,
        MISSING_CATEGORY,
        column_values,
        shown,
        to_categorical,
        to_numeric,
    )
else:
    try:  # inside a model dir's code/, next to this file's copy
        from mlship_columns import (
            FLOAT32_MAX,
            MISSING_CATEGORY,
            column_values,
            shown,
            to_categorical,
            to_numeric,
        )
    except ImportError:  # imported as part of mlship
        from mlship.scoring.columns import (
            FLOAT32_MAX,
            MISSING_CATEGORY,
            column_values,
            shown,
            to_categorical,
            to_numeric,
        )

SHOWN_PROBLEMS = 20


class InvalidRowsError(ValueError):
    """Rows mlship would refuse; the message names each bad cell (first 20) and the count."""


def _load_pyfunc(path: str, model_config: Any = None) -> MlshipModel:  # noqa: ARG001 - MLflow's
    """MLflow's loader hook: ``path`` is the model dir (the flavor has no ``data`` key)."""
    import yaml

    root = Path(path)
    spec = yaml.safe_load((root / "MLmodel").read_text(encoding="utf-8"))
    pickled = spec["flavors"]["sklearn"]["pickled_model"]
    with (root / pickled).open("rb") as handle:
        estimator = _Unpickler(handle).load()  # the dir's own pipeline, as mlflow.sklearn does
    return MlshipModel(estimator, spec.get("metadata") or {})


SHIPPED_MODULES = {"mlship.training.xgboost_model": "mlship_xgboost"}


class _Unpickler(pickle.Unpickler):
    """Finds mlship's own estimator classes in the dir's ``code/`` copies, not in mlship."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(SHIPPED_MODULES.get(module, module), name)


class MlshipModel:
    """The pipeline behind mlship's input contract: coerce, check, predict, and name problems."""

    def __init__(self, estimator: Any, metadata: dict[str, Any]) -> None:
        self.estimator = estimator
        self.numeric: list[str] = list(metadata.get("numeric") or [])
        self.categorical: list[str] = list(metadata.get("categorical") or [])
        self.nullable = set(metadata.get("nullable") or [])
        self.classes = [str(c) for c in metadata.get("classes") or []]
        self.is_classifier = metadata.get("task", "classification") == "classification"
        # mlship's rule (``mlship.scoring.results.label_indices``): a binary classifier with a
        # threshold labels positive_class iff P(positive_class) >= it; else argmax.
        threshold = metadata.get("decision_threshold")
        self.threshold = None if threshold is None else float(threshold)
        self.positive = metadata.get("positive_class")

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:  # noqa: ARG002
        """A DataFrame of ``prediction`` (and ``proba_<class>`` per class) for ``model_input``."""
        import pandas as pd

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        features = self.coerce(frame)
        out = pd.DataFrame(index=frame.index)
        if not self.is_classifier:
            out["prediction"] = np.asarray(self.estimator.predict(features), dtype=np.float64)
            return out
        proba = np.asarray(self.estimator.predict_proba(features), dtype=np.float64)
        classes = self.classes or [str(c) for c in self.estimator.classes_]
        chosen = proba.argmax(axis=1)
        if self.threshold is not None and len(classes) == 2:
            positive = classes.index(self.positive) if self.positive in classes else 1
            chosen = np.where(proba[:, positive] >= self.threshold, positive, 1 - positive)
        out["prediction"] = np.asarray(classes, dtype=object)[chosen]
        for i, label in enumerate(classes):
            out[f"proba_{label}"] = proba[:, i]
        return out

    def coerce(self, frame: Any) -> Any:
        """The feature columns in model order and dtypes; ``InvalidRowsError`` for any bad cell."""
        import pandas as pd

        missing = [c for c in self.numeric + self.categorical if c not in frame.columns]
        if missing:
            raise InvalidRowsError(f"required column is missing: {', '.join(missing)}")
        problems: list[tuple[int, int, str]] = []
        columns: dict[str, np.ndarray] = {}
        for place, name in enumerate(self.numeric):
            columns[name] = self._number(frame, name, place, problems)
        for place, name in enumerate(self.categorical, start=len(self.numeric)):
            columns[name] = self._category(frame, name, place, problems)
        if problems:
            problems.sort()
            lines = [f"row {row}, column {text}" for row, _, text in problems[:SHOWN_PROBLEMS]]
            more = len(problems) - SHOWN_PROBLEMS
            raise InvalidRowsError("; ".join(lines) + (f" (+{more} more)" if more > 0 else ""))
        return pd.DataFrame(columns, index=frame.index)

    def _number(
        self, frame: Any, name: str, place: int, problems: list[tuple[int, int, str]]
    ) -> np.ndarray:
        raw = column_values(frame, name)
        values, bad = to_numeric(raw)
        for row in np.flatnonzero(bad):
            got = shown(raw[row])
            problems.append((int(row), place, f"{name!r}: expected a number, got {got}"))
        for row in np.flatnonzero(np.abs(values) > FLOAT32_MAX):
            problems.append((int(row), place, f"{name!r}: value out of range (|x| > 3.4e38)"))
        if name not in self.nullable:
            for row in np.flatnonzero(np.isnan(values) & ~bad):
                problems.append((int(row), place, f"{name!r}: missing value not allowed"))
        return values

    def _category(
        self, frame: Any, name: str, place: int, problems: list[tuple[int, int, str]]
    ) -> np.ndarray:
        raw = column_values(frame, name)
        text, bad = to_categorical(raw)
        for row in np.flatnonzero(bad):
            got = type(raw[row]).__name__
            problems.append((int(row), place, f"{name!r}: expected a string or number, got {got}"))
        if name not in self.nullable:
            for row in np.flatnonzero((text == MISSING_CATEGORY) & ~bad):
                problems.append((int(row), place, f"{name!r}: missing value not allowed"))
        return text
