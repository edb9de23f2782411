"""The predictor core: load a saved model dir once, validate input rows, predict.

The HTTP service, ``mlship predict`` and the batch/Spark paths are thin shells around
``Predictor``; input validation lives here and nowhere else.

A saved model dir is an MLflow model directory. We read its ``MLmodel`` file (YAML) directly
rather than through ``mlflow.pyfunc``: the scoring image then needs neither MLflow nor its
dependency tree, and a model loads in a fraction of the time. The fields we read (flavor
``sklearn`` with ``pickled_model``/``serialization_format``/``skops_trusted_types``,
``signature.inputs``, ``metadata``, ``run_id``) are MLflow's documented model format.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from mlship.errors import InputError, ModelError
from mlship.frame import as_categorical

MAX_REPORTED = 20
NUMERIC_TYPES = frozenset({"double", "float", "long", "integer"})


@dataclass(frozen=True)
class Column:
    """One input column of the model, as its signature and training metadata describe it."""

    name: str
    kind: Literal["numeric", "categorical"]
    nullable: bool


@dataclass(frozen=True)
class ModelInfo:
    """Identity and training facts of a saved model, for replies, metadata and image labels."""

    name: str
    version: str
    run_id: str
    task: str
    target: str
    algorithm: str
    classes: list[str]
    positive_class: str | None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Prediction:
    """Predicted labels (or values) and, for classifiers, one probability per class per row."""

    predictions: list[Any]
    probabilities: np.ndarray | None
    classes: list[str]

    def probability_records(self) -> list[dict[str, float]] | None:
        if self.probabilities is None:
            return None
        return [dict(zip(self.classes, map(float, row), strict=True)) for row in self.probabilities]


def _load_estimator(model_dir: Path, flavor: dict[str, Any]) -> Any:
    path = model_dir / flavor.get("pickled_model", "model.pkl")
    fmt = flavor.get("serialization_format", "pickle")
    if not path.is_file():
        raise ModelError(f"model dir {model_dir}: {path.name} is missing")
    if fmt == "skops":  # MLflow's default format, for models logged by other tooling
        try:
            import skops.io
        except ImportError:
            raise ModelError(
                f"model dir {model_dir}: saved with skops, which is not installed"
            ) from None

        return skops.io.load(path, trusted=flavor.get("skops_trusted_types") or [])
    if fmt in ("pickle", "cloudpickle"):
        import pickle

        with path.open("rb") as handle:
            return pickle.load(handle)
    raise ModelError(f"model dir {model_dir}: unsupported serialization_format {fmt!r}")


def _read_mlmodel(model_dir: Path) -> dict[str, Any]:
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        raise ModelError(f"{model_dir} is not a saved model dir (no MLmodel file)")
    loaded = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict) or "sklearn" not in loaded.get("flavors", {}):
        raise ModelError(f"{mlmodel}: not a scikit-learn MLflow model")
    return loaded


class Predictor:
    """A loaded model plus everything needed to check and score rows for it."""

    def __init__(
        self,
        estimator: Any,
        columns: list[Column],
        info: ModelInfo,
        extra_columns: Literal["reject", "ignore"] = "reject",
    ) -> None:
        self.estimator = estimator
        self.columns = columns
        self.info = info
        self.extra_columns = extra_columns
        self.column_names = [c.name for c in columns]
        self._numeric = [c.name for c in columns if c.kind == "numeric"]
        self._categorical = [c.name for c in columns if c.kind == "categorical"]
        self._nullable = {c.name for c in columns if c.nullable}
        self.is_classifier = info.task == "classification"

    @classmethod
    def load(
        cls, model_dir: Path | str, extra_columns: Literal["reject", "ignore"] = "reject"
    ) -> Predictor:
        """Load a saved model dir written by ``mlship train`` or ``mlship image build``."""
        root = Path(model_dir)
        if not root.is_dir():
            raise ModelError(f"model dir {root} does not exist")
        spec = _read_mlmodel(root)
        meta = spec.get("metadata") or {}
        signature = spec.get("signature") or {}
        if not signature.get("inputs"):
            raise ModelError(f"{root}/MLmodel has no input signature")
        inputs = json.loads(signature["inputs"])
        categorical = set(meta.get("categorical") or [])
        nullable = set(meta.get("nullable") or [])
        columns = [
            Column(
                name=item["name"],
                kind="categorical"
                if item["name"] in categorical or item.get("type") not in NUMERIC_TYPES
                else "numeric",
                nullable=item["name"] in nullable,
            )
            for item in inputs
        ]
        extra: dict[str, Any] = {}
        info_file = root / "mlship.json"
        if info_file.is_file():
            extra = json.loads(info_file.read_text(encoding="utf-8"))
        info = ModelInfo(
            name=str(extra.get("name", root.name)),
            version=str(extra.get("version", "")),
            run_id=str(extra.get("run_id", spec.get("run_id", ""))),
            task=str(meta.get("task", "classification")),
            target=str(meta.get("target", "")),
            algorithm=str(meta.get("algorithm", "")),
            classes=[str(c) for c in meta.get("classes") or []],
            positive_class=meta.get("positive_class"),
            metrics={k: float(v) for k, v in (extra.get("metrics") or {}).items()},
        )
        estimator = _load_estimator(root, spec["flavors"]["sklearn"])
        if info.task == "classification" and not info.classes:
            info = ModelInfo(**{**info.__dict__, "classes": [str(c) for c in estimator.classes_]})
        return cls(estimator, columns, info, extra_columns)

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

    def frame_from_records(self, records: Sequence[Any]) -> pd.DataFrame:
        """Rows given as objects; a row missing a field or adding one is named by row."""
        expected = set(self.column_names)
        details: list[dict[str, Any]] = []
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                details.append(
                    {"row": i, "error": f"expected an object, got {type(record).__name__}"}
                )
                continue
            if record.keys() == expected:
                continue
            keys = set(record)
            details += [
                {"row": i, "column": c, "error": "required field is missing"}
                for c in self.column_names
                if c not in keys
            ]
            if self.extra_columns == "reject":
                details += [
                    {"row": i, "column": str(c), "error": "unknown column"}
                    for c in record
                    if c not in expected
                ]
            if len(details) >= MAX_REPORTED:
                break
        if details:
            raise InputError(summarize(details), details[:MAX_REPORTED])
        return pd.DataFrame.from_records(list(records), columns=self.column_names)

    def frame_from_arrays(self, rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
        """Rows given as arrays in signature order."""
        width = len(self.column_names)
        problems = [
            {"row": i, "error": f"expected {width} values in signature order, got {len(row)}"}
            for i, row in enumerate(rows)
            if not isinstance(row, list | tuple) or len(row) != width
        ]
        if problems:
            raise InputError(
                f"array rows must have {width} values ({', '.join(self.column_names)})",
                problems[:MAX_REPORTED],
            )
        return pd.DataFrame(list(rows), columns=self.column_names, dtype=object)

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Check and coerce raw input to the model's columns; every problem found is reported.

        Raises ``InputError`` with one detail per (row, column) problem, capped at
        ``MAX_REPORTED``, so a client can fix a whole request at once.
        """
        if len(frame) == 0:
            raise InputError("no rows to score")
        details: list[dict[str, Any]] = []
        missing = [c for c in self.column_names if c not in frame.columns]
        details += [{"column": c, "error": "required column is missing"} for c in missing]
        if self.extra_columns == "reject":
            unknown = [str(c) for c in frame.columns if c not in set(self.column_names)]
            details += [{"column": c, "error": "unknown column"} for c in unknown]
        if details:
            raise InputError(summarize(details), details[:MAX_REPORTED])
        frame = frame.reset_index(drop=True)
        out: dict[str, pd.Series] = {}
        for name in self._numeric:
            raw = frame[name]
            values = pd.to_numeric(raw, errors="coerce").astype("float64")
            present = raw.notna().to_numpy()
            if raw.dtype == object:
                present = present & ~raw.map(_is_nan).to_numpy(dtype=bool)
            nan = values.isna().to_numpy()
            for row in np.flatnonzero(nan & present)[:MAX_REPORTED]:
                details.append(
                    {
                        "row": int(row),
                        "column": name,
                        "error": f"expected a number, got {raw.iloc[row]!r}",
                    }
                )
            inf = np.isinf(values.to_numpy())
            for row in np.flatnonzero(inf)[:MAX_REPORTED]:
                details.append({"row": int(row), "column": name, "error": "infinite value"})
            if name not in self._nullable:
                for row in np.flatnonzero(~present)[:MAX_REPORTED]:
                    details.append({"row": int(row), "column": name, "error": _NULL_ERROR})
            out[name] = values
        for name in self._categorical:
            raw = frame[name]
            bad = raw.map(lambda v: isinstance(v, dict | list | tuple | set)).to_numpy(dtype=bool)
            for row in np.flatnonzero(bad)[:MAX_REPORTED]:
                details.append(
                    {
                        "row": int(row),
                        "column": name,
                        "error": f"expected a string or number, got {type(raw.iloc[row]).__name__}",
                    }
                )
            text = as_categorical(raw.where(~bad, None))
            if name not in self._nullable:
                for row in np.flatnonzero((text.isna() & ~bad).to_numpy())[:MAX_REPORTED]:
                    details.append({"row": int(row), "column": name, "error": _NULL_ERROR})
            out[name] = text
        if details:
            details.sort(key=lambda d: (d.get("row", -1), self.column_names.index(d["column"])))
            raise InputError(summarize(details), details[:MAX_REPORTED])
        return pd.DataFrame(out)[self.column_names]

    def predict(self, frame: pd.DataFrame) -> Prediction:
        """Validate then score; labels and class probabilities for classifiers."""
        features = self.validate(frame)
        return self.predict_valid(features)

    def predict_valid(self, features: pd.DataFrame) -> Prediction:
        """Score rows that ``validate`` already returned."""
        if self.is_classifier:
            proba = np.asarray(self.estimator.predict_proba(features), dtype=float)
            classes = [str(c) for c in self.estimator.classes_]
            labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)].tolist()
            return Prediction(labels, proba, classes)
        values = np.asarray(self.estimator.predict(features), dtype=float)
        return Prediction([float(v) for v in values], None, [])


_NULL_ERROR = "missing value not allowed (this column had none in training)"


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def summarize(details: list[dict[str, Any]]) -> str:
    first = details[0]
    where = []
    if "row" in first:
        where.append(f"row {first['row']}")
    if "column" in first:
        where.append(f"column {first['column']!r}")
    more = f" (+{len(details) - 1} more)" if len(details) > 1 else ""
    return f"{', '.join(where)}: {first['error']}{more}"
