"""Output staged beside its destination and moved into place only when the job succeeded.

On an object store the move copies a finished temp key. A failure removes the temp file, so
the output URI holds the previous result or nothing, never half a result.
"""

from __future__ import annotations

import uuid
from typing import Any

import pyarrow as pa

from mlship.errors import DataError
from mlship.storage import has_suffix, infer_format


class Staged:
    """A hidden temp file beside ``uri``; ``commit`` moves it into place, ``discard`` drops it."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        import fsspec

        self.uri = uri
        self.fmt = infer_format(uri) if has_suffix(uri) else "parquet"
        try:
            self.fs, self.path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
        except ImportError as exc:
            raise DataError(f"{uri!r}: the filesystem is not installed ({exc})") from None
        if uri.rstrip().endswith("/") or _is_dir(self.fs, self.path):
            raise DataError(
                f"output {uri!r} is a directory; name a file (scores.parquet, scores.csv) "
                "or use the spark engine, which writes a directory of parts"
            )
        parent, _, name = self.path.rstrip("/").rpartition("/")
        self.parent = parent or "."
        self.tmp = f"{parent}/.{name}.tmp-{uuid.uuid4().hex[:8]}"
        self._handle: Any = None
        self._writer: Any = None

    def write(self, table: pa.Table) -> None:
        try:
            self._write(table)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"output {self.uri!r}: cannot write it: {_first_line(exc)}") from None

    def _write(self, table: pa.Table) -> None:
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        if self._writer is None:
            self.fs.makedirs(self.parent, exist_ok=True)
            self._handle = self.fs.open(self.tmp, "wb")
            self._writer = (
                pq.ParquetWriter(self._handle, table.schema)
                if self.fmt == "parquet"
                else pacsv.CSVWriter(self._handle, table.schema)
            )
        self._writer.write_table(table)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def commit(self, schema: pa.Schema) -> None:
        """Close the file (an empty one when nothing was written) and move it to ``uri``."""
        if self._writer is None:
            self.write(schema.empty_table())
        try:
            self._close()
            self._move()
        except OSError as exc:
            raise DataError(f"output {self.uri!r}: cannot commit it: {_first_line(exc)}") from None

    def _move(self) -> None:
        if _is_gcs(self.fs):
            # gcsfs's mv tries the objects.moveTo API first and retries it for ~30 s where it
            # is missing (the GCS emulator); a server-side copy, then delete, is what it
            # falls back to anyway. The temp object goes on failure too (discard).
            self.fs.copy(self.tmp, self.path)
            self.fs.rm(self.tmp)
        else:
            self.fs.mv(self.tmp, self.path)

    def discard(self) -> None:
        try:
            self._close()
        finally:
            if self.fs.exists(self.tmp):
                self.fs.rm(self.tmp)


def _is_dir(fs: Any, path: str) -> bool:
    try:
        return bool(fs.isdir(path))
    except OSError:
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_gcs(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return bool({"gs", "gcs"} & set(protocols))
