"""Files and URIs: formats by name, and write-then-rename so output appears whole or not at all."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlship.errors import DataError, StorageError

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".tsv")
# Files that mark a dir as a saved model (``mlship.model.layout`` names them); kept here so the
# lowest layer can refuse to replace anything else without knowing the model format.
MARKERS = ("MLmodel", "mlship.json")


def infer_format(uri: str, declared: str = "auto") -> str:
    """csv or parquet, from the declared format or the URI's extension (a dir reads as parquet)."""
    if declared != "auto":
        return declared
    path = uri.split("?", 1)[0].rstrip("/").lower()
    if path.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if path.endswith(CSV_SUFFIXES):
        return "csv"
    if "://" not in uri and Path(uri).is_dir():
        return "parquet"
    raise DataError(f"{uri!r}: cannot tell the format from its name; say csv or parquet")


def has_suffix(uri: str) -> bool:
    """Whether the last path segment of ``uri`` has an extension (a file name, not a dir)."""
    return "." in uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def check_replaceable(dest: Path) -> None:
    """Refuse to replace anything but an empty dir or a model dir we wrote before.

    ``output.model_dir=.`` or a typo pointing at a data folder must not wipe it.
    """
    if not dest.exists():
        ancestor = dest.parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise StorageError(f"cannot create {dest}: {ancestor} is a file")
        return
    if not dest.is_dir():
        raise StorageError(f"{dest} exists and is not a directory")
    if any(dest.iterdir()) and not any((dest / marker).exists() for marker in MARKERS):
        raise StorageError(
            f"{dest} is a non-empty directory that is not a saved model; "
            "choose another output.model_dir or empty it"
        )


@contextmanager
def atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield a fresh sibling temp dir; on success it replaces ``dest``, on error it is removed.

    The temp dir sits beside ``dest`` so the final step is a rename on one filesystem. An
    existing ``dest`` is moved aside first and deleted only after the new one is in place.
    """
    dest = dest.resolve()
    check_replaceable(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {dest.parent}: {exc.strerror or exc}") from None
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if dest.exists():
        old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
        dest.rename(old)
    try:
        tmp.rename(dest)
    except BaseException:
        if old is not None:
            old.rename(dest)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
