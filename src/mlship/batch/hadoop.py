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
        self.path = context._jvm.org.apache.hadoop.fs.Path(uri)
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
        """Move ``staged`` to this path, removing what was here only once ``staged`` is whole."""
        parent = self.path.getParent()
        if parent is not None and not self.fs.exists(parent):
            self.fs.mkdirs(parent)
        self.delete()
        if not self.fs.rename(staged.path, self.path):
            raise DataError(f"output {self.uri!r}: could not move the finished output there")


def sibling(uri: str) -> str:
    parent, sep, name = uri.rstrip("/").rpartition("/")
    return f"{parent}{sep}.{name}.tmp-{uuid.uuid4().hex[:8]}"
