"""The predictor core: load a saved model dir once, validate input rows, predict.

The HTTP service, ``mlship predict`` and the Spark job are thin shells around ``Predictor``;
input validation lives here and nowhere else. Rows travel as *columns*: a mapping of column
name to a numpy array, which is what both runtimes want and what a JSON body decodes into
without pandas.

A saved model dir is an MLflow model directory. We read its ``MLmodel`` file (YAML) directly
rather than through ``mlflow.pyfunc``, so the scoring image needs neither MLflow nor its
dependency tree. The fields read (flavor ``sklearn`` with ``pickled_model`` and
``serialization_format``, ``signature.inputs``, ``metadata``, ``run_id``) are MLflow's
documented model format. ``extra_files/model.onnx`` is the compiled twin written at training
time (see ``mlship.compile``), used when its parity report passed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import yaml

from mlship.errors import InputError, ModelError
from mlship.frame import MISSING_CATEGORY, column_values, to_categorical, to_numeric

if TYPE_CHECKING:
    import pandas as pd

Columns = dict[str, np.ndarray]
Runtime = Literal["auto", "onnx", "sklearn"]
MAX_REPORTED = 20
# Both runtimes must see the same numbers; ONNX computes in float32, where larger values
# overflow to inf and poison the probabilities, so validation rejects them for everyone.
FLOAT32_MAX = float(np.finfo(np.float32).max)
NUMERIC_TYPES = frozenset({"double", "float", "long", "integer"})
ONNX_FILE = "extra_files/model.onnx"
PARITY_FILE = "extra_files/onnx_parity.json"


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
        classes = self.classes
        return [dict(zip(classes, row, strict=True)) for row in self.probabilities.tolist()]


class Backend(Protocol):
    """What a runtime must do with validated columns."""

    name: str

    def probabilities(self, columns: Columns) -> np.ndarray: ...

    def values(self, columns: Columns) -> np.ndarray: ...


class SklearnBackend:
    """The fitted scikit-learn pipeline; it selects columns by name, so it gets a DataFrame."""

    name = "sklearn"

    def __init__(self, estimator: Any, column_names: list[str]) -> None:
        self.estimator = estimator
        self.column_names = column_names

    def _frame(self, columns: Columns) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(columns, columns=self.column_names, copy=False)

    def probabilities(self, columns: Columns) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(self._frame(columns)), dtype=np.float64)

    def values(self, columns: Columns) -> np.ndarray:
        return np.asarray(self.estimator.predict(self._frame(columns)), dtype=np.float64)


class OnnxBackend:
    """The compiled graph in onnxruntime: one input per column, shaped (rows, 1)."""

    name = "onnx"

    def __init__(self, path: Path, numeric: list[str], categorical: list[str], threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.numeric = numeric
        self.categorical = categorical
        outputs = [o.name for o in self.session.get_outputs()]
        self._proba = "probabilities" if "probabilities" in outputs else outputs[-1]
        self._value = outputs[0]

    def _feeds(self, columns: Columns) -> dict[str, np.ndarray]:
        feeds = {c: columns[c].astype(np.float32).reshape(-1, 1) for c in self.numeric}
        feeds |= {c: columns[c].reshape(-1, 1) for c in self.categorical}
        return feeds

    def probabilities(self, columns: Columns) -> np.ndarray:
        out = self.session.run([self._proba], self._feeds(columns))[0]
        return np.asarray(out, dtype=np.float64)

    def values(self, columns: Columns) -> np.ndarray:
        out = self.session.run([self._value], self._feeds(columns))[0]
        return np.asarray(out, dtype=np.float64).ravel()


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


def onnx_parity(model_dir: Path) -> dict[str, Any] | None:
    """The parity report written beside ``model.onnx`` at training time, if any."""
    report = model_dir / PARITY_FILE
    if not report.is_file():
        return None
    loaded: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return loaded


def _backend(
    root: Path, spec: dict[str, Any], columns: list[Column], runtime: Runtime, threads: int
) -> Backend:
    parity = onnx_parity(root)
    passed = bool(parity and parity.get("passed")) and (root / ONNX_FILE).is_file()
    if runtime == "onnx" and not passed:
        why = "no compiled model" if parity is None else f"parity failed: {parity.get('reason')}"
        raise ModelError(f"runtime onnx: {root} cannot use ONNX ({why}); use runtime sklearn")
    if runtime in ("auto", "onnx") and passed:
        try:
            numeric = [c.name for c in columns if c.kind == "numeric"]
            categorical = [c.name for c in columns if c.kind == "categorical"]
            return OnnxBackend(root / ONNX_FILE, numeric, categorical, threads)
        except ImportError:
            if runtime == "onnx":
                raise ModelError("runtime onnx: onnxruntime is not installed") from None
    try:
        estimator = _load_estimator(root, spec["flavors"]["sklearn"])
    except ImportError as exc:
        raise ModelError(
            f"runtime sklearn: cannot load {root} ({exc}); this image has no scikit-learn, "
            "and the model has no ONNX twin that passed parity"
        ) from None
    return SklearnBackend(estimator, [c.name for c in columns])


class Predictor:
    """A loaded model plus everything needed to check and score rows for it."""

    def __init__(
        self,
        backend: Backend,
        columns: list[Column],
        info: ModelInfo,
        extra_columns: Literal["reject", "ignore"] = "reject",
    ) -> None:
        self.backend = backend
        self.columns = columns
        self.info = info
        self.extra_columns = extra_columns
        self.column_names = [c.name for c in columns]
        self._expected = set(self.column_names)
        self._numeric = [c.name for c in columns if c.kind == "numeric"]
        self._categorical = [c.name for c in columns if c.kind == "categorical"]
        self._nullable = {c.name for c in columns if c.nullable}
        self._position = {name: i for i, name in enumerate(self.column_names)}
        self._getter = _row_getter(self.column_names)
        self.is_classifier = info.task == "classification"

    @property
    def runtime(self) -> str:
        return self.backend.name

    @classmethod
    def load(
        cls,
        model_dir: Path | str,
        extra_columns: Literal["reject", "ignore"] = "reject",
        runtime: Runtime = "auto",
        threads: int = 1,
    ) -> Predictor:
        """Load a saved model dir written by ``mlship train`` or ``mlship image build``.

        ``runtime``: ``auto`` uses the ONNX twin when its parity report passed and
        onnxruntime is installed, else scikit-learn; ``onnx`` and ``sklearn`` insist.
        """
        if runtime not in ("auto", "onnx", "sklearn"):
            raise ModelError(f"runtime {runtime!r}: choose auto, onnx or sklearn")
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
        backend = _backend(root, spec, columns, runtime, threads)
        if info.task == "classification" and not info.classes:
            if not isinstance(backend, SklearnBackend):
                raise ModelError(f"{root}/MLmodel metadata lists no classes")
            info = replace(info, classes=[str(c) for c in backend.estimator.classes_])
        return cls(backend, columns, info, extra_columns)

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

    # -- shapes in -------------------------------------------------------------------------

    def columns_from_records(self, records: Sequence[Any]) -> Columns:
        """Rows given as objects; a row missing a field or adding one is named by row."""
        expected = self._expected
        details: list[dict[str, Any]] = []
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                details.append(
                    {"row": i, "error": f"expected an object, got {type(record).__name__}"}
                )
            elif record.keys() != expected:
                details += [
                    {"row": i, "column": c, "error": "required field is missing"}
                    for c in self.column_names
                    if c not in record
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
        return self._columns_of(list(map(self._getter, records)), len(records))

    def columns_from_arrays(self, rows: Sequence[Any]) -> Columns:
        """Rows given as arrays in signature order."""
        width = len(self.column_names)
        problems = [
            {"row": i, "error": f"expected {width} values in signature order, got {_size(row)}"}
            for i, row in enumerate(rows)
            if not isinstance(row, list | tuple) or len(row) != width
        ]
        if problems:
            raise InputError(
                f"array rows must have {width} values ({', '.join(self.column_names)})",
                problems[:MAX_REPORTED],
            )
        return self._columns_of(rows, len(rows))

    def _columns_of(self, rows: Sequence[Sequence[Any]], count: int) -> Columns:
        """Equal-length rows in signature order -> one object array per column."""
        matrix = np.empty((count, len(self.column_names)), dtype=object)
        try:
            matrix[:] = rows
        except ValueError:  # a cell holding a list makes numpy see a deeper shape
            for i, row in enumerate(rows):
                for j, value in enumerate(row):
                    matrix[i, j] = value
        return {name: matrix[:, j] for j, name in enumerate(self.column_names)}

    def columns_from_named(self, names: Sequence[Any], values: Mapping[str, np.ndarray]) -> Columns:
        """Columns given by name (a table, a CSV, a dataframe_split): check the name set."""
        counts = Counter(str(n) for n in names)
        duplicated = [name for name, count in counts.items() if count > 1]
        if duplicated:
            raise InputError(
                f"column {duplicated[0]!r}: given more than once",
                [{"column": duplicated[0], "error": "duplicate column"}],
            )
        present = set(counts)
        details = [
            {"column": c, "error": "required column is missing"}
            for c in self.column_names
            if c not in present
        ]
        if self.extra_columns == "reject":
            details += [
                {"column": str(c), "error": "unknown column"}
                for c in names
                if str(c) not in self._expected
            ]
        if details:
            raise InputError(summarize(details), details[:MAX_REPORTED])
        return {name: values[name] for name in self.column_names}

    def columns_from_frame(self, frame: pd.DataFrame) -> Columns:
        """A pandas DataFrame (batch files, Spark partitions)."""
        names = [str(c) for c in frame.columns]
        wanted = [c for c in self.column_names if c in set(names)]
        return self.columns_from_named(names, {c: column_values(frame, c) for c in wanted})

    # -- validation ------------------------------------------------------------------------

    def validate(self, columns: Columns) -> Columns:
        """Coerce raw columns to the model's dtypes; report every problem by row and column.

        Raises ``InputError`` with one detail per (row, column) problem, capped at
        ``MAX_REPORTED``, so a client can fix a whole request at once.
        """
        rows = len(next(iter(columns.values()))) if columns else 0
        if rows == 0:
            raise InputError("no rows to score")
        details: list[dict[str, Any]] = []
        out: Columns = self._numeric_fast(columns)
        for name in self._numeric if not out else ():
            raw = columns[name]
            values, bad = to_numeric(raw)
            missing = np.isnan(values) & ~bad
            if bad.any():
                details += [
                    {"row": int(r), "column": name, "error": f"expected a number, got {raw[r]!r}"}
                    for r in np.flatnonzero(bad)[:MAX_REPORTED]
                ]
            huge = np.abs(values) > FLOAT32_MAX  # also catches inf
            if huge.any():
                details += [
                    {"row": int(r), "column": name, "error": "value out of range (|x| > 3.4e38)"}
                    for r in np.flatnonzero(huge)[:MAX_REPORTED]
                ]
            if name not in self._nullable and missing.any():
                details += [
                    {"row": int(r), "column": name, "error": _NULL_ERROR}
                    for r in np.flatnonzero(missing)[:MAX_REPORTED]
                ]
            out[name] = values
        for name in self._categorical:
            raw = columns[name]
            text, bad = to_categorical(raw)
            if bad.any():
                details += [
                    {
                        "row": int(r),
                        "column": name,
                        "error": f"expected a string or number, got {type(raw[r]).__name__}",
                    }
                    for r in np.flatnonzero(bad)[:MAX_REPORTED]
                ]
            if name not in self._nullable:
                missing = (text == MISSING_CATEGORY) & ~bad
                if missing.any():
                    details += [
                        {"row": int(r), "column": name, "error": _NULL_ERROR}
                        for r in np.flatnonzero(missing)[:MAX_REPORTED]
                    ]
            out[name] = text
        if details:
            details.sort(key=lambda d: (d["row"], self._position[d["column"]]))
            raise InputError(summarize(details), details[:MAX_REPORTED])
        return out

    def _numeric_fast(self, columns: Columns) -> Columns:
        """All numeric columns converted in one vectorised step, or {} if any cell needs a look.

        The common case (every cell a number, nothing missing where it may not be) costs one
        conversion and two checks for the whole block; anything else takes the per-column
        path, which finds and names each problem.
        """
        if not self._numeric:
            return {}
        try:
            block = np.stack([columns[c] for c in self._numeric], axis=1).astype(np.float64)
        except (TypeError, ValueError, OverflowError):
            return {}
        if (np.abs(block) > FLOAT32_MAX).any():
            return {}
        if not np.isfinite(block).all():
            missing_ok = np.array([c in self._nullable for c in self._numeric])
            if np.isinf(block).any() or (np.isnan(block) & ~missing_ok).any():
                return {}
        return {name: block[:, i] for i, name in enumerate(self._numeric)}

    # -- prediction ------------------------------------------------------------------------

    def predict(self, data: pd.DataFrame | Columns) -> Prediction:
        """Validate then score; labels and class probabilities for classifiers."""
        columns = data if isinstance(data, dict) else self.columns_from_frame(data)
        return self.predict_valid(self.validate(columns))

    def predict_valid(self, columns: Columns) -> Prediction:
        """Score columns that ``validate`` returned."""
        if self.is_classifier:
            proba = self.backend.probabilities(columns)
            classes = self.info.classes
            labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)].tolist()
            return Prediction(labels, proba, classes)
        return Prediction(self.backend.values(columns).tolist(), None, [])


_NULL_ERROR = "missing value not allowed (this column had none in training)"


def _row_getter(names: list[str]) -> Any:
    """A C-speed ``record -> tuple of values in signature order``."""
    import operator

    if len(names) == 1:
        only = names[0]
        return lambda record: (record[only],)
    return operator.itemgetter(*names)


def _size(row: Any) -> str:
    return str(len(row)) if isinstance(row, list | tuple) else type(row).__name__


def summarize(details: list[dict[str, Any]]) -> str:
    """One line for the first problem, with a count of the rest."""
    first = details[0]
    where = []
    if "row" in first:
        where.append(f"row {first['row']}")
    if "column" in first:
        where.append(f"column {first['column']!r}")
    more = f" (+{len(details) - 1} more)" if len(details) > 1 else ""
    return f"{', '.join(where)}: {first['error']}{more}"
