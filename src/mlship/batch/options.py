"""One description of a batch job, shared by the command line, the local engine and Spark."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mlship.errors import DataError

OnError = Literal["fail", "skip"]


@dataclass(frozen=True)
class BatchOptions:
    """What to score, where to write it, and what to do with rows that do not fit the model.

    ``on_error``: ``fail`` stops at the first bad batch, writing nothing; ``skip`` scores the
    good rows and reports the bad ones (also to ``rejected_uri`` when given).
    """

    input_uri: str
    output_uri: str
    batch_rows: int = 50_000
    id_column: str | None = None
    on_error: OnError = "fail"
    rejected_uri: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.batch_rows < 1:
            raise DataError(f"batch_rows must be at least 1, got {self.batch_rows}")
        if self.on_error not in ("fail", "skip"):
            raise DataError(f"on_error must be fail or skip, got {self.on_error!r}")
        if self.rejected_uri and self.on_error != "skip":
            raise DataError("a rejected-rows output needs on_error=skip")

    def needed_columns(self, model_columns: list[str]) -> list[str]:
        """The model's columns plus the id column, in that order."""
        if self.id_column and self.id_column not in model_columns:
            return [*model_columns, self.id_column]
        return list(model_columns)
