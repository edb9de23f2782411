"""Paths on whatever filesystem Spark writes to, through Hadoop's FileSystem API."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from mlship.errors import DataError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class HadoopPath:
    """A path on whatever filesystem Spark writes to (file:, hdfs:, s3a:, gs:, abfss:, dbfs:)."""

    def __init__(self, spark: SparkSession, uri: str) -> None:
        context: Any = spark.sparkContext
        self._path_class = context._jvm.org.apache.hadoop.fs.Path
        self.path = self._path_class(uri)
        self.fs = self.path.getFileSystem(context._jsc.hadoopConfiguration())
        self.uri = uri

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def delete(self) -> None:
        if self.fs.exists(self.path):
            self.fs.delete(self.path, True)

    def visible_children(self) -> list[str]:
        if not self.fs.getFileStatus(self.path).isDirectory():
            return [self.uri]
        names = [str(s.getPath().getName()) for s in self.fs.listStatus(self.path)]
        return sorted(n for n in names if not n.startswith((".", "_")))

    def replace_with(self, staged: HadoopPath) -> None:
        """Move ``staged`` to this path; what was here is removed only once ``staged`` is in.

        The old output is first renamed aside (a rename, not a copy, on every Hadoop
        filesystem that has one), so a move that fails puts it back instead of losing both.
        """
        parent = self.path.getParent()
        if parent is not None and not self.fs.exists(parent):
            self.fs.mkdirs(parent)
        aside = self._move_aside()
        try:
            if not self.fs.rename(staged.path, self.path):
                raise DataError(f"output {self.uri!r}: could not move the finished output there")
        except BaseException:
            if aside is not None:
                self.fs.rename(aside, self.path)
            raise
        if aside is not None:
            self.fs.delete(aside, True)

    def _move_aside(self) -> Any:
        """Rename what is at this path to a hidden sibling; that sibling, or None if empty."""
        if not self.fs.exists(self.path):
            return None
        name = f".{self.path.getName()}.old-{uuid.uuid4().hex[:8]}"
        aside = self._path_class(self.path.getParent(), name)
        if not self.fs.rename(self.path, aside):
            raise DataError(f"output {self.uri!r}: could not move the previous output aside")
        return aside


def sibling(uri: str) -> str:
    parent, sep, name = uri.rstrip("/").rpartition("/")
    return f"{parent}{sep}.{name}.tmp-{uuid.uuid4().hex[:8]}"
