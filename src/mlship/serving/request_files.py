"""Where logged requests go, and how a batch of them becomes one file, atomically.

A destination is a local folder or any fsspec URI (``gs://bucket/requests/``, ``s3://...``).
A reader never sees half a file:

- local folder: the file is written under a hidden temporary name (``.<name>.tmp``, which
  pyarrow's dataset readers and ``mlship monitor`` skip) in the same folder, then renamed
  (``os.replace``);
- any other filesystem: the whole file is built in memory and uploaded in one call
  (``pipe_file``); an object store makes an object visible only once its upload completes.

File names are unique per process and never reused: the UTC time, the pid, a random token
of the process (two containers can both be pid 1) and a sequence number, so no row is written
twice, whatever the number of workers or replicas.

The format is Parquet when pyarrow is importable, else CSV (``mlship.serving.request_csv``:
same columns, ``.csv`` names); the serving images carry no pyarrow, so they log CSV. A URI
that is not a local folder needs fsspec (and its filesystem package), which the images do not
carry either: they log to a local folder, such as a bucket mounted as a volume. Both are
checked when the service starts, in one line.
"""

from __future__ import annotations

import io
import itertools
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlship.errors import MlshipError
from mlship.scoring.columns import MISSING_CATEGORY, to_categorical, to_numeric
from mlship.scoring.results import PREDICTION, PROBA_PREFIX

if TYPE_CHECKING:
    from mlship.scoring.predictor import Predictor
    from mlship.scoring.results import Prediction

INSTALL = "pip install 'mlship[batch]' (pyarrow and fsspec)"
PARQUET, CSV = "parquet", "csv"
# Columns of every logged row before the features; a feature of the same name is prefixed.
META = ("timestamp", "request_id", "model_name", "model_version", "route")
FEATURE_PREFIX = "feature_"


@dataclass(frozen=True, slots=True)
class Entry:
    """One scored request, as queued: the columns the model was given and what it answered."""

    time: float  # time.time() when the reply was ready
    request_id: str
    route: str
    predictor: Predictor
    columns: dict[str, np.ndarray]
    result: Prediction

    @property
    def rows(self) -> int:
        return len(self.result.predictions)


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://")).expanduser().resolve()


def check_destination(uri: str) -> str:
    """The format requests are logged in to ``uri``; fails now, in one line, if they cannot."""
    return Destination.open(uri).format


class Destination:
    """A folder (local or fsspec) that receives whole Parquet or CSV files, one name each."""

    def __init__(self, uri: str, fs: Any, root: str, fmt: str = PARQUET) -> None:
        self.uri = uri
        self.fs = fs  # None: a local folder
        self.root = root
        self.format = fmt
        self.token = secrets.token_hex(4)
        self.sequence = itertools.count(1)

    @classmethod
    def open(cls, uri: str) -> Destination:
        fmt = PARQUET if _importable("pyarrow", "pyarrow.parquet") else CSV
        if is_local(uri):
            folder = local_path(uri)
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise MlshipError(
                    f"--log-requests {uri}: cannot create the folder ({exc})"
                ) from None
            if not os.access(folder, os.W_OK):
                raise MlshipError(f"--log-requests {uri}: the folder is not writable")
            return cls(uri, None, str(folder), fmt)
        if not _importable("fsspec"):
            raise MlshipError(
                f"--log-requests {uri} needs fsspec, which this environment does not have: "
                f"{INSTALL}; or log to a local folder (a bucket mounted as a volume, say)"
            )
        import fsspec

        protocol = uri.split("://", 1)[0]
        try:
            fs = fsspec.filesystem(protocol)
        except ImportError as exc:
            raise MlshipError(f"--log-requests {uri}: {exc}".replace("\n", " ")) from None
        except ValueError as exc:  # unknown protocol
            raise MlshipError(f"--log-requests {uri}: {exc}") from None
        return cls(uri, fs, uri.rstrip("/"), fmt)

    def name(self, when: float) -> str:
        stamp = datetime.fromtimestamp(when, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        number = next(self.sequence)
        return f"requests-{stamp}-p{os.getpid()}-{self.token}-{number:06d}.{self.format}"

    def convert(self, entries: list[Entry]) -> Any:
        """The rows of ``entries`` (one model) in this format's buffer form: compact, and no
        Python object per cell left for the garbage collector to walk."""
        if self.format == CSV:
            from mlship.serving.request_csv import csv_columns

            return csv_columns(entries, feature_names(entries[0].predictor))
        return to_table(entries)

    def write(self, chunks: list[Any], when: float) -> str:
        """Write the converted ``chunks`` as one new file; its name."""
        name = self.name(when)
        data = self._encode(chunks)
        if self.fs is None:
            final = Path(self.root) / name
            temporary = final.with_name(f".{name}.tmp")
            try:
                temporary.write_bytes(data)
                temporary.replace(final)
            finally:
                temporary.unlink(missing_ok=True)
            return name
        self.fs.pipe_file(f"{self.root}/{name}", data)
        return name

    def _encode(self, chunks: list[Any]) -> bytes:
        if self.format == CSV:
            from mlship.serving.request_csv import csv_bytes

            return csv_bytes(chunks)
        import pyarrow as pa
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(pa.concat_tables(chunks), buffer)
        return buffer.getvalue()


def _importable(*modules: str) -> bool:
    import importlib

    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError:
        return False
    return True


def feature_names(predictor: Predictor) -> list[tuple[str, str, bool]]:
    """Per model input: its column in the log (prefixed when it would clash with the log's
    own columns), its name in the request, whether it is numeric."""
    info = predictor.info
    taken = set(META) | {PREDICTION} | {f"{PROBA_PREFIX}{c}" for c in info.classes}
    return [
        (FEATURE_PREFIX + c.name if c.name in taken else c.name, c.name, c.kind == "numeric")
        for c in predictor.columns
    ]


def to_table(entries: list[Entry]) -> Any:
    """The rows of ``entries`` (all for the same model) as one Arrow table.

    Features are written as the model saw them after validation: numbers as float64,
    categories as the strings the model matched; a missing value is null in both.
    """
    import pyarrow as pa

    predictor = entries[0].predictor
    counts = [len(e.result.predictions) for e in entries]
    rows = sum(counts)
    info = predictor.info
    stamps = [int(e.time * 1e6) for e in entries]
    arrays: dict[str, Any] = {
        "timestamp": pa.array(_repeat(stamps, counts, rows), pa.timestamp("us", tz="UTC")),
        "request_id": pa.array(_repeat([e.request_id for e in entries], counts, rows), pa.string()),
        "model_name": pa.array([info.name] * rows, pa.string()),
        "model_version": pa.array([info.version] * rows, pa.string()),
        "route": pa.array(_repeat([e.route for e in entries], counts, rows), pa.string()),
    }
    for logged, name, numeric in feature_names(predictor):
        raw = np.concatenate([e.columns[name] for e in entries])  # then one conversion
        arrays[logged] = _feature(raw, numeric)
    arrays.update(_results(entries))
    return pa.table(arrays)


def _repeat(values: list[Any], counts: list[int], rows: int) -> list[Any]:
    """Each request's value once per row it sent."""
    if rows == len(values):  # one-row requests, the common case
        return values
    return [v for v, n in zip(values, counts, strict=True) for _ in range(n)]


def _feature(raw: np.ndarray, numeric: bool) -> Any:
    import pyarrow as pa

    if numeric:
        values = to_numeric(raw)[0]
        return pa.array(values, pa.float64(), mask=np.isnan(values))
    text = to_categorical(raw)[0]
    return pa.array(text.tolist(), pa.string(), mask=text == MISSING_CATEGORY)


def _results(entries: list[Entry]) -> dict[str, Any]:
    import pyarrow as pa

    first = entries[0].result
    predictions = list(itertools.chain.from_iterable(e.result.predictions for e in entries))
    kind = pa.string() if first.probabilities is not None else pa.float64()
    out: dict[str, Any] = {PREDICTION: pa.array(predictions, kind)}
    if first.probabilities is not None:
        proba = np.concatenate([e.result.probabilities for e in entries])
        for i, label in enumerate(first.classes):
            out[f"{PROBA_PREFIX}{label}"] = pa.array(proba[:, i], pa.float64())
    return out
