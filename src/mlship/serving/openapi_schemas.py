"""The named component schemas of the OpenAPI document, built from the model's signature.

A generated client is only as typed as these schemas: every body shape ``/score`` accepts gets
its own name, with one property per model column (a ``number`` or a ``string``, ``null`` only
where training saw nulls), and the reply names the classes. Array shapes list the columns in
``prefixItems`` in signature order, and every description that matters repeats that order,
since it is the one thing an array body cannot say for itself.

The schemas state the contract a client should follow; the service is a little more lenient
(decimal text for numbers, integral numbers for categories), and says so in the descriptions.
While the model is still loading there is no signature: the shapes are then untyped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlship.model.saved import Column
from mlship.scoring.columns import FLOAT32_MAX
from mlship.scoring.predictor import Predictor
from mlship.serving.codecs.native import SIDE_KEYS

Schema = dict[str, Any]
ROWS_FROM = 0  # the first row of a body is row 0 in every error's details
NUMBER = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
CELL: Schema = {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


@dataclass(frozen=True)
class Signature:
    """What the schemas need of the model: columns in order, classes, and the limits."""

    columns: list[Column]
    classes: list[str]
    classifier: bool
    unused: list[str]
    reject_extra: bool
    max_rows: int

    @classmethod
    def of(cls, predictor: Predictor | None, extra: str, max_rows: int) -> Signature:
        """The served model's signature; an empty one (untyped shapes) while it loads."""
        if predictor is None:
            return cls([], [], False, [], False, max_rows)
        info = predictor.info
        unused = sorted(predictor.unused)
        return cls(
            predictor.columns,
            info.classes,
            predictor.is_classifier,
            unused,
            extra == "reject",
            max_rows,
        )

    @property
    def known(self) -> bool:
        return bool(self.columns)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def order(self) -> str:
        """The sentence every array shape carries: which value goes where."""
        if not self.known:
            return "Values in signature order (GET /metadata, column_order)."
        listed = ", ".join(f"{i}: {name}" for i, name in enumerate(self.names))
        return f"Values in signature order ({len(self.columns)} columns): {listed}."


def column_schema(column: Column, position: int, total: int) -> Schema:
    """One cell of ``column`` in a JSON body, typed as the model's validation checks it."""
    where = f"Column {position} of {total} in signature order ({column.kind})"
    if column.kind == "numeric":
        schema: Schema = dict(NUMBER)
        note = 'a number (|x| <= 3.4e38); decimal text such as "1.5" is read as well'
    else:
        schema = {"type": "string"}
        note = 'a category; an integral number is read as its text (7 -> "7")'
    if column.nullable:
        schema["type"] = [schema["type"], "null"]
        note += "; null means missing, which training saw"
    else:
        note += "; null (missing) is refused"
    return {**schema, "title": column.name, "description": f"{where}: {note}."}


def _cells(sig: Signature) -> list[Schema]:
    total = len(sig.columns)
    return [column_schema(c, i, total) for i, c in enumerate(sig.columns)]


def _record(sig: Signature) -> Schema:
    if not sig.known:
        return {"type": "object", "description": "One row: column name -> value."}
    properties = dict(zip(sig.names, _cells(sig), strict=True))
    for name in sig.unused:
        properties[name] = {
            "description": "A training-table column the model does not use: accepted and ignored."
        }
    return {
        "type": "object",
        "description": "One row, every model column by name (columns in signature order: "
        f"{', '.join(sig.names)}). Unknown keys are "
        + ("refused (422)." if sig.reject_extra else "ignored (counted in /metrics)."),
        "properties": properties,
        "required": sig.names,
        "additionalProperties": not sig.reject_extra,
    }


def _array_row(sig: Signature) -> Schema:
    if not sig.known:
        return {"type": "array", "items": CELL, "description": sig.order()}
    width = len(sig.columns)
    return {
        "type": "array",
        "description": f"One row as an array. {sig.order()}",
        # Exactly these values: min = max = width. Not "items": false, which generators
        # such as openapi-python-client cannot read.
        "prefixItems": _cells(sig),
        "minItems": width,
        "maxItems": width,
    }


def _rows(item: str, sig: Signature, what: str) -> Schema:
    return {
        "type": "array",
        "items": ref(item),
        "minItems": 1,
        "maxItems": sig.max_rows,
        "description": f"{what}: 1 to {sig.max_rows:,} rows (more: 413).",
    }


def _wrapper(key: str, value: Schema, description: str) -> Schema:
    """``{key: value}``, with MLflow's ``params`` / Vertex's ``parameters`` allowed and ignored."""
    side = {name: {"type": "object", "description": "Accepted and ignored."} for name in SIDE_KEYS}
    return {
        "type": "object",
        "description": description,
        "properties": {key: value, **side},
        "required": [key],
        "additionalProperties": False,
    }


def _split(sig: Signature) -> Schema:
    names: Schema = {"type": "string"}
    if sig.known and sig.reject_extra:  # with extra_columns=ignore any other name is taken
        names["enum"] = [*sig.names, *sig.unused]
    return {
        "type": "object",
        "description": "MLflow's split orient: column names, then rows of values in the order "
        f"of `columns` (any order, every model column once). Signature order: {sig.order()}",
        "properties": {
            "columns": {"type": "array", "items": names, "uniqueItems": True, "minItems": 1},
            "data": {"type": "array", "minItems": 1, "items": {"type": "array", "items": CELL}},
            "index": {"type": "array", "items": {}, "description": "Accepted and ignored."},
        },
        "required": ["columns", "data"],
    }


def _columnar(sig: Signature) -> Schema:
    if not sig.known:
        return {"type": "object", "additionalProperties": {"type": "array", "items": CELL}}
    return {
        "type": "object",
        "description": "MLflow's columnar inputs: one list per column, all the same length.",
        "properties": {
            **{
                name: {"type": "array", "items": cell, "minItems": 1}
                for name, cell in zip(sig.names, _cells(sig), strict=True)
            },
            **{
                name: {"type": "array", "description": "Not used by the model: ignored."}
                for name in sig.unused
            },
        },
        "required": sig.names,
        "additionalProperties": not sig.reject_extra,
    }


def request_schemas(sig: Signature) -> dict[str, Schema]:
    """Every JSON shape ``/score`` takes, each named, and their union ``ScoreRequest``."""
    both = {"anyOf": [ref("Records"), ref("ArrayRows")]}
    return {
        "Record": _record(sig),
        "ArrayRow": _array_row(sig),
        "Records": _rows("Record", sig, "An array of records"),
        "ArrayRows": _rows("ArrayRow", sig, f"An array of arrays. {sig.order()}"),
        "InstancesRequest": _wrapper("instances", both, "Vertex AI / KServe v1 style."),
        "InputsRequest": _wrapper(
            "inputs", {"anyOf": [*both["anyOf"], ref("ColumnarInputs")]}, "MLflow's inputs."
        ),
        "ColumnarInputs": _columnar(sig),
        "DataframeSplit": _split(sig),
        "DataframeSplitRequest": _wrapper(
            "dataframe_split", ref("DataframeSplit"), "MLflow's dataframe_split."
        ),
        "DataframeRecordsRequest": _wrapper(
            "dataframe_records", ref("Records"), "MLflow's dataframe_records."
        ),
        "ScoreRequest": {
            "description": f"Any of the JSON shapes. Array shapes: {sig.order()}",
            "anyOf": [
                ref(n)
                for n in (
                    "Records",
                    "ArrayRows",
                    "InstancesRequest",
                    "InputsRequest",
                    "DataframeSplitRequest",
                    "DataframeRecordsRequest",
                )
            ],
        },
        "CsvBody": {
            "type": "string",
            "description": "CSV, UTF-8: a header row naming the columns (any order), or no "
            "header and values in signature order (SageMaker's CSVSerializer). Cells are "
            "read as pandas.read_csv read the training data (empty, NA, null, ... are "
            f"missing). {sig.order()}",
        },
        "ArrowBody": {
            "type": "string",
            "format": "binary",
            "description": "An Arrow IPC stream (application/vnd.apache.arrow.stream) of "
            "record batches, one column per model column: numbers as integer or floating point "
            "columns, categories as string columns; nulls are missing. A column of the wrong "
            "type is a 422 naming it.",
        },
        "JsonLinesBody": {
            "type": "string",
            "description": "One JSON record, or array in signature order, per line.",
        },
    }
